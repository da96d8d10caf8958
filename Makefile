# The two commands a newcomer runs: `make plan` and `make test`. Each builds the venv/ that
# Pulumi.yaml names, from the pinned requirements, the first time (and again when they change).
PYTHON ?= python3
VENV := venv
PY := $(VENV)/bin/python

.PHONY: plan plan-dr-test test test-again lint rehearse bench-watch bench-guard bench-drill bench-outage bench-rotation bench-media bench-attic bench-rehearsal-media bench-pitr clean

$(VENV)/.runtime: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

plan: $(VENV)/.runtime  ## offline plan of the prod stack and its monthly cost: no credentials, no Pulumi CLI
	$(PY) -m drctl plan --stack prod

plan-dr-test: $(VENV)/.runtime
	$(PY) -m drctl plan --stack dr-test

test: $(VENV)/.dev  ## the whole test suite
	$(PY) -m pytest

test-again: $(VENV)/.dev  ## the real-server tests (MariaDB, HAProxy, PHP) once more: a flaky one fails here, not on a later PR
	$(PY) -m pytest -q -m integration -p no:cacheprovider

lint: $(VENV)/.dev
	$(PY) -m ruff check .

rehearse: $(VENV)/.runtime  ## the DR drill on this machine: planned, unplanned and automatic failover of dr-test, every region down, then a point-in-time restore (MariaDB, HAProxy, nginx and rclone for the media, Node, rclone serve s3)
	$(PY) -m drctl rehearse -s dr-test --planned
	$(PY) -m drctl rehearse -s dr-test --unplanned
	$(PY) -m drctl rehearse -s dr-test --automatic
	$(PY) -m drctl rehearse -s dr-test --fault all-regions-down
	$(PY) -m drctl rehearse -s dr-test --restore

bench-drill: $(VENV)/.runtime  ## failover under sustained order load: lag p50/p99, orders lost, RTO breakdown
	$(PY) bench/drill_benchmark.py

bench-pitr: $(VENV)/.dev  ## point-in-time recovery: archive lag p50/p99 at 200 orders/s, restore time of a 1 GB shop
	$(PY) bench/pitr_benchmark.py lag
	$(PY) bench/pitr_benchmark.py restore --size-gb 1

bench-outage: $(VENV)/.runtime  ## every region down, rehearsed three times: fallback page served, recovery time
	$(PY) bench/outage_benchmark.py

bench-rotation: $(VENV)/.dev  ## (as root) how fast a web node whose PHP-FPM died or hung leaves the NodeBalancer's rotation, and rejoins
	$(PY) bench/rotation_agent.py

bench-watch: $(VENV)/.dev  ## the watchdog's failover policy (with and without fast confirm) against the seed's script, one table
	$(PY) bench/watch_policy.py

bench-guard: $(VENV)/.runtime  ## RTO at prod's scale on a simulated clock: a person promoting against drctl guard
	$(PY) bench/guard_rto.py

bench-media: $(VENV)/.dev  ## media RPO: 100 uploads of 1 MB, upload -> served by the region's other node and by the DR region, p50/p99
	$(PY) bench/media_rpo.py

bench-attic: $(VENV)/.dev  ## pruning a media bucket's attic: seconds for 2000 attic objects, 1500 expired
	$(PY) bench/attic_prune.py

bench-rehearsal-media: $(VENV)/.runtime  ## the rehearsal's media step, 3 planned + 3 unplanned failovers: upload -> DR copy, -> served in DR
	$(PY) bench/rehearsal_media.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
