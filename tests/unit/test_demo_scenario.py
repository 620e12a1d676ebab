"""What the demo sends while its late partner is down, and what waits for it (pure)."""

from __future__ import annotations

from node.demo.scenario import HUB_ONLY, LATE, Step, first_step, hub_steps, split, steps


def _name(step: Step) -> str:
    number = step.certificate.number if step.certificate is not None else step.target
    return f"{step.action} {step.sender} {number}"


def test_what_needs_the_late_partner_waits_for_it_in_order() -> None:
    everything = [*steps(), *hub_steps()]
    now, later = split(everything, LATE)
    assert [_name(s) for s in later] == [
        "submit KE KE-DEMO-0001",  # to US
        "submit US US-DEMO-0001",  # from US
        "submit NL NL-DEMO-0002",  # to US
        "withdraw NL NL-DEMO-0002",  # acts on a certificate sent to US
    ]
    assert [_name(s) for s in now] == [
        "submit NL NL-DEMO-0001",
        "submit KE KE-DEMO-0002",
        "replace KE KE-DEMO-0003",  # acts on KE-DEMO-0002, sent to NL
        "submit KE KE-DEMO-0100",
        f"submit {HUB_ONLY} CL-DEMO-0001",
    ]
    # Nothing lost, nothing doubled; each part keeps the order it was given in.
    assert sorted(map(id, now + later)) == sorted(map(id, everything))


def test_the_first_certificate_is_the_one_sent_while_the_partner_is_down() -> None:
    first = first_step()
    assert first.certificate is not None
    assert split([first], LATE) == ([], [first])
    assert split([first], "KE") == ([first], [])
