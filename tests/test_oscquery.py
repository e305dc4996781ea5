"""control/web/oscquery.py: the registry as OSCQuery's tree, queries on it, HOST_INFO and the notices two
trees differ by; pure, no sockets (the scenarios serve it: tests/scenarios/test_web_oscquery.py)."""

from __future__ import annotations

from installation.app import default_registry
from installation.control.web.oscquery import (
    ACCESS_RW,
    ACCESS_WRITE,
    answer,
    changes,
    find,
    host_info,
    shape,
    tree,
)


def test_every_parameter_is_a_node_at_its_address_with_its_type_range_and_value() -> None:
    registry = default_registry()
    root = tree(registry, {"pre/blur": 3})
    for p in registry.values():
        node = find(root, p.address)
        assert node is not None and node["FULL_PATH"] == p.address, p.address
    blur = find(root, "/pre/blur")
    assert blur is not None
    assert blur["TYPE"] == "f" and blur["ACCESS"] == ACCESS_RW and blur["VALUE"] == [3.0]
    p = registry["pre/blur"]
    assert blur["RANGE"] == [{"MIN": p.lo, "MAX": p.hi}] and blur["CLIPMODE"] == ["both"]
    recall = find(root, "/preset/recall")
    assert recall is not None and recall["ACCESS"] == ACCESS_WRITE and recall["VALUE"] == [None]
    assert find(root, "/pre")["CONTENTS"]["blur"] is blur  # type: ignore[index]
    assert find(root, "/status/fps") is not None and find(tree(registry, protocol=False), "/status/fps") is None


def test_queries_are_answered_as_the_spec_has_them() -> None:
    root = tree(default_registry(), {"pre/blur": 2})
    assert answer(root, "/pre/blur", "VALUE") == (200, {"VALUE": [2.0]})
    assert answer(root, "/preset/recall", "VALUE") == (204, None)  # write-only: no value to read
    assert answer(root, "/no/such", "")[0] == 404
    status, body = answer(root, "/pre/blur", "")
    assert status == 200 and body["FULL_PATH"] == "/pre/blur"


def test_host_info_names_a_udp_port_only_where_there_is_one() -> None:
    on = host_info("show", "127.0.0.1", 9000, 9002)
    assert on["OSC_IP"] == "127.0.0.1" and on["OSC_PORT"] == 9000 and on["WS_PORT"] == 9002
    off = host_info("show", "127.0.0.1", 0, 9002)
    assert "OSC_PORT" not in off and "OSC_IP" not in off and off["WS_IP"] == "127.0.0.1"
    assert host_info("show", "0.0.0.0", 9000, 9002)["OSC_IP"] != "0.0.0.0"  # the address others reach


def test_a_new_model_on_disk_is_one_changed_path() -> None:
    registry = default_registry()
    before = shape(tree(registry, vals={"model/select": ["default"]}))
    after = shape(tree(registry, vals={"model/select": ["default", "leaves"]}))
    assert changes(before, after) == [{"COMMAND": "PATH_CHANGED", "DATA": "/model/select"}]
    assert changes(before, before) == []
