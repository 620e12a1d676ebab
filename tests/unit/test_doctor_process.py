"""`ephyto doctor`'s question to the running node (node.doctor.process): each answer, or
its absence, told as one finding with what to do."""

from __future__ import annotations

from node.doctor.process import process_finding, ready_url
from node.observe.settings import ListenAddress

LISTEN = ListenAddress("127.0.0.1", 9464)
URL = "http://127.0.0.1:9464/health/ready"
START = "ephyto node serve --dir n"


def test_the_url_asked_is_loopback_for_a_listener_on_every_interface() -> None:
    assert ready_url(LISTEN) == URL
    assert ready_url(ListenAddress("0.0.0.0", 1)) == "http://127.0.0.1:1/health/ready"
    assert ready_url(ListenAddress("::", 1)) == "http://[::1]:1/health/ready"


def test_a_ready_node_is_ok() -> None:
    body = {"ready": True, "checks": {"store": {"ok": True, "detail": ""}}, "failing": []}
    finding = process_finding(LISTEN, URL, 200, body, None, START)
    assert finding.status == "ok" and URL in finding.detail


def test_a_node_not_ready_says_which_check_fails() -> None:
    body = {
        "ready": False,
        "checks": {"directory": {"ok": False, "detail": "no directory is trusted yet"}},
        "failing": ["directory"],
    }
    finding = process_finding(LISTEN, URL, 503, body, None, START)
    assert finding.status == "problem"
    assert "not ready: directory: no directory is trusted yet" in finding.detail


def test_a_node_that_does_not_answer_is_a_problem_saying_how_to_start_it() -> None:
    finding = process_finding(LISTEN, URL, None, None, "ClientConnectorError: refused", START)
    assert finding.status == "problem"
    assert "does not answer" in finding.detail and START in (finding.action or "")


def test_something_else_on_the_port_is_told_apart() -> None:
    for status, body in ((200, None), (404, {"x": 1}), (503, ["directory"]), (200, "ok")):
        finding = process_finding(LISTEN, URL, status, body, None, START)
        assert finding.status == "problem"
        assert "not the node's health endpoint" in finding.detail


def test_without_a_fixed_listener_nothing_is_asked() -> None:
    assert process_finding(None, None, None, None, None, START).status == "ok"
    unfindable = process_finding(ListenAddress("127.0.0.1", 0), None, None, None, None, START)
    assert unfindable.status == "warning" and "port changes" in unfindable.detail
