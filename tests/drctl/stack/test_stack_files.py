"""Stack files read as the Pulumi CLI reads them: what it refuses is refused, what it expands is
expanded, at a bounded cost, and every refusal is one line naming the file, the line and the key."""

import tracemalloc

import pytest

from drctl.stack.files import StackFileError, load_stack_file, read_stack_config


def read(tmp_path, text: str | bytes):
    path = tmp_path / "Pulumi.x.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return read_stack_config(path)


def refusal(tmp_path, text: str | bytes) -> str:
    with pytest.raises(StackFileError) as err:
        read(tmp_path, text)
    assert "\n" not in str(err.value)
    return str(err.value)


# Nine lists of nine aliases, seven levels: 9**7 = 4.8 million strings from under 300 bytes.
ALIAS_BOMB = "config:\n  a: &a [lol,lol,lol,lol,lol,lol,lol,lol,lol]\n" + "".join(
    f"  {n}: &{n} [{','.join([f'*{p}'] * 9)}]\n" for p, n in zip("abcdef", "bcdefg", strict=True)
)


def test_a_duplicate_key_is_refused_with_both_lines(tmp_path):
    text = "config:\n  woocommerce-dr:domain: a.example.com\n  woocommerce-dr:domain: b.example.com\n"
    assert refusal(tmp_path, text) == (
        "Pulumi.x.yaml:3: config.woocommerce-dr:domain: duplicate key, first given at line 2 "
        "(got 'woocommerce-dr:domain' twice; allowed: each key once per mapping, as the Pulumi CLI requires)"
    )


def test_a_duplicate_key_inside_a_structured_value_is_refused(tmp_path):
    text = "config:\n  woocommerce-dr:regions:\n    - region: us-east\n      webNodes: 2\n      webNodes: 3\n"
    assert refusal(tmp_path, text).startswith(
        "Pulumi.x.yaml:5: config.woocommerce-dr:regions[0].webNodes: duplicate key, first given at line 4 ")


def test_merge_keys_may_be_overridden_as_in_yaml(tmp_path):
    text = "base: &base {webNodes: 1, region: us-east}\nconfig:\n  r: {<<: *base, webNodes: 2}\n"
    assert read(tmp_path, text) == {"r": {"webNodes": 2, "region": "us-east"}}


def test_aliases_are_expanded_as_the_cli_expands_them(tmp_path):
    text = "config:\n  a:\n    - &east {region: us-east, webNodes: 2}\n    - *east\n"
    assert read(tmp_path, text) == {"a": [{"region": "us-east", "webNodes": 2}] * 2}


def test_an_alias_bomb_is_refused_before_it_costs_memory(tmp_path):
    assert len(ALIAS_BOMB.encode()) < 300
    tracemalloc.start()
    try:
        message = refusal(tmp_path, ALIAS_BOMB)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 5_000_000, f"{peak} bytes"
    assert "expands to more than 10000 values once its aliases are expanded" in message
    assert message.startswith("Pulumi.x.yaml:6: config.e[0]: ")


def test_a_recursive_alias_is_refused(tmp_path):
    assert refusal(tmp_path, "config:\n  a: &a [1, *a]\n") == (
        "Pulumi.x.yaml:2: config.a[1]: an alias refers to the value that contains it "
        "(got a recursive alias; allowed: aliases to complete, earlier values only)")


@pytest.mark.parametrize(("text", "value"), [
    ("yes", "yes"), ("on", "on"), ("No", "No"), ("off", "off"), ("true", True), ("FALSE", False),
    ("2024-01-01", "2024-01-01"), ("1:30", "1:30"), ("0x1f", 31), ("0o17", 15), ("010", 10), ("1e3", 1000.0),
    ("~", None), ("'2'", "2"),
])
def test_scalars_follow_yaml_1_2_like_the_cli(tmp_path, text, value):
    # PyYAML's YAML 1.1 would read yes/on as true, 2024-01-01 as a date and 1:30 as 90.
    assert read(tmp_path, f"config:\n  k: {text}\n") == {"k": value}


def test_a_byte_order_mark_is_accepted(tmp_path):
    assert read(tmp_path, b"\xef\xbb\xbfconfig:\n  k: v\n") == {"k": "v"}


def test_the_repo_stack_files_read_cleanly():
    for stack in ("prod", "dr-test"):
        assert load_stack_file(stack).config["woocommerce-dr:domain"].endswith("shop.example.com")


def test_a_missing_stack_file_names_the_flag_that_gave_it(tmp_path):
    with pytest.raises(StackFileError) as err:
        load_stack_file("prod", path=tmp_path / "nope.yaml")
    assert str(err.value) == (
        f"--stack-file: no such file (got {str(tmp_path / 'nope.yaml')!r}; allowed: the path of a stack file)")
