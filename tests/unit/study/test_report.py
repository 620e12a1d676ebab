"""The study's report (node/study/report.py, figures.py, parquet.py, run_files.py) on a
small run written by hand, hostile strings included."""

from __future__ import annotations

import io
import json
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping

import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]
import pytest

from node.errors import InputError
from node.study import figures
from node.study.parquet import to_parquet
from node.study.report import (
    Figure,
    duration,
    flatten,
    hub_load,
    markdown,
    md1_wait,
    significant,
)
from node.study.report import html_page as page
from node.study.run_files import RunData, parse_table, read_run

HOSTILE = '<script>alert("x")</script> & <img src=http://evil/x.png>'
SCENARIO = f"""
name = "tiny"
description = '{HOSTILE}'
period_days = 3
countries = [
  {{ code = "FR", region = "europe", node = true }},
  {{ code = "DE", region = "europe", node = true }},
  {{ code = "KE", region = "africa" }},
]
[trade]
seed = 3
certificates_per_year = 900
[hub]
capacity_per_day = 500
[[outages]]
party = "hub"
start_hours = 20
duration_hours = 4
[costs]
node_running_cost_per_year = 36500
fee_models = [{{ name = "flat", kind = "prepaid", fee = 5 }}]
"""


def summary(**changes: object) -> dict[str, object]:
    value: dict[str, object] = {
        "scenario": "tiny",
        "code_version": "9.9.9",
        "seed": 4,
        "scale": 1.0,
        "period_days": 3.0,
        "topology": "hybrid",
        "countries": 3,
        "direct_links": 1,
        "service_ms": {"node_send": 3.7, "node_receive": 3.1, "hub": 15.0},
        "certificates": 6,
        "undelivered": 1,
        "by_route": {
            "direct": {
                "certificates": 2,
                "p50_seconds": 0.1,
                "p95_seconds": 0.2,
                "p99_seconds": 0.2,
                "share_within_1h": 1.0,
            },
            "hub": {
                "certificates": 3,
                "p50_seconds": 120.0,
                "p95_seconds": 15000.0,
                "p99_seconds": 15000.0,
                "share_within_1h": 0.666667,
            },
            "hub-fallback": {
                "certificates": 0,
                "p50_seconds": None,
                "p95_seconds": None,
                "p99_seconds": None,
                "share_within_1h": None,
            },
        },
        "hub_queue_wait_seconds": {"mean": 0.002, "p99": 0.01, "max": 0.01},
        "hub_most_envelopes_held": 2,
        "attempts_total": 9,
        "messages_csv": "all",
    }
    value.update(changes)
    return value


MESSAGES = """id,from,to,submitted,delivered,route,attempts
C000000001,FR,DE,100.000,100.100,direct,1
C000000002,DE,FR,5000.000,5000.200,direct,1
C000000003,KE,FR,7000.000,7120.000,hub,1
C000000004,FR,KE,72000.000,87000.000,hub,3
C000000005,KE,DE,90000.000,90200.000,hub,1
C000000006,KE,DE,200000.000,,hub,9
"""
PAIRS_HEADER = (
    "origin,destination,route,certificates,undelivered,"
    "p50_seconds,p95_seconds,p99_seconds,share_within_1h\n"
)
PAIRS = (
    PAIRS_HEADER
    + """DE,FR,direct,1,0,0.200,0.200,0.200,1.0000
FR,DE,direct,1,0,0.100,0.100,0.100,1.0000
KE,DE,hub,1,1,200.000,200.000,200.000,1.0000
"""
)
OUTAGES = (
    "party,start_hours,duration_hours,certificates_affected,certificates_delayed,"
    "delay_p50_seconds,delay_p95_seconds,delay_max_seconds,pairs_affected,drain_hours\n"
    "hub,20,4,1,1,14880.000,14880.000,14880.000,1,0.167\n"
)
HOLDINGS = "hour,envelopes_held\n" + "".join(f"{h},{2 if h == 21 else 0}\n" for h in range(1, 73))
COSTS = (
    "country,runs_node,fee_model,currency,hub_envelopes_sent,hub_fees,"
    "envelopes_past_plan_cap,node_running_cost,node_currency\n"
    + f"""FR,yes,"{HOSTILE.replace('"', '""')}",EUR,1,5,0,300,EUR
DE,yes,"{HOSTILE.replace('"', '""')}",EUR,0,0,0,300,EUR
KE,no,"{HOSTILE.replace('"', '""')}",EUR,400,2000,0,300,EUR
"""
)


def run_files(**replaced: bytes | None) -> dict[str, bytes]:
    files = {
        "summary.json": json.dumps(summary()).encode(),
        "messages.csv": MESSAGES.encode(),
        "pairs.csv": PAIRS.encode(),
        "outages.csv": OUTAGES.encode(),
        "hub_holdings.csv": HOLDINGS.encode(),
        "costs.csv": COSTS.encode(),
        "tiny.toml": SCENARIO.encode(),
    }
    for name, data in replaced.items():
        name = ".".join(name.rsplit("_", 1))  # summary_json: summary.json
        if data is None:
            files.pop(name)
        else:
            files[name] = data
    return files


def drawn(run: RunData) -> dict[str, Figure]:
    return {name: figures.draw(run, name) for name in figures.NAMES}


@pytest.fixture(scope="module")
def tiny() -> RunData:
    return read_run(run_files())


@pytest.fixture(scope="module")
def tiny_figures(tiny: RunData) -> dict[str, Figure]:
    return drawn(tiny)


def test_the_run_is_read_typed(tiny: RunData) -> None:
    assert tiny.summary.by_route["hub"].certificates == 3
    assert tiny.summary.by_route["hub-fallback"].p50_seconds is None
    assert len(tiny.messages) == 6 and tiny.messages[-1].delivered is None
    assert tiny.outages[0].pairs_affected == 1 and tiny.outages[0].drain_hours == 0.167
    assert tiny.hub_holdings[20] == (21, 2)
    assert tiny.costs[2].hub_fees == 2000 and not tiny.costs[2].runs_node
    assert tiny.scenario.description == HOSTILE and tiny.scenario_file == "tiny.toml"
    assert tiny.topologies is not None
    assert tiny.topologies["bilateral"].trust_relationships == 3


def test_the_page_is_self_contained_and_escapes_every_string(
    tiny: RunData, tiny_figures: Mapping[str, Figure]
) -> None:
    html = page(tiny, tiny_figures)
    lowered = html.lower()
    for external in ('src="http', "src='http", "<link", "<script", "url(", "@import", "href="):
        assert external not in lowered, external
    # Every image is embedded: six figures, each an SVG data URI.
    sources = re.findall(r'src="([^"]*)"', html)
    assert len(sources) == len(figures.NAMES)
    assert all(s.startswith("data:image/svg+xml;base64,") for s in sources)
    assert "default-src 'none'" in html  # the page may not load anything at all
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;img" in html
    assert "evil" not in html.replace("&lt;img src=http://evil/x.png&gt;", "")


def test_markdown_has_the_tables_and_no_markup_from_the_data(
    tiny: RunData, tiny_figures: Mapping[str, Figure]
) -> None:
    md = markdown(tiny, tiny_figures)
    lines = md.splitlines()
    assert "| route | certificates | share | p50 | p95 | p99 | within 1 h |" in lines
    assert "| direct | 2 | 40.0% | 100 ms | 200 ms | 200 ms | 100.0% |" in lines
    assert "| hub | 3 | 60.0% | 2 min | 4.17 h | 4.17 h | 66.7% |" in lines
    assert any(line.startswith("| hub | 20 | 4 h | 1 | 1 | 4.13 h |") for line in lines)
    assert any(line.startswith("| hybrid (this scenario) |") for line in lines)
    assert "| seed | 4 |" in lines and "| code version | 9.9.9 |" in lines
    for name in figures.NAMES:
        assert f"](figures/{name}.png)" in md
    # The fee model's hostile name: escaped, so no HTML and no table cell breaks out.
    assert not re.search(r"(?<!\\)[<>\[\]]", md.replace("![", "").replace("](", ""))
    assert "\\<script\\>" in md
    # KE pays 2,000 against a node's 300: the hub costs it more than a node.
    assert "1 of 3: KE" in md


def test_figures_are_png_and_svg(tiny_figures: Mapping[str, Figure]) -> None:
    assert set(tiny_figures) == set(figures.NAMES)
    for figure in tiny_figures.values():
        assert figure.png.startswith(b"\x89PNG\r\n\x1a\n") and len(figure.png) > 1000
        root = ET.fromstring(figure.svg)
        assert root.tag == "{http://www.w3.org/2000/svg}svg"
        # The legend's hostile fee model name is drawn as glyphs (and an escaped comment),
        # never an element or a link.
        for element in root.iter():
            assert not element.tag.endswith("script") and not element.tag.endswith("image")
            assert all("evil" not in value for value in element.attrib.values())
        assert figure.title and figure.how_to_read


def test_the_same_run_gives_the_same_bytes(
    tiny: RunData, tiny_figures: Mapping[str, Figure]
) -> None:
    again_run = read_run(run_files())
    again = drawn(again_run)
    for name, figure in tiny_figures.items():
        assert again[name].png == figure.png, name
        assert again[name].svg == figure.svg, name
    assert markdown(again_run, again) == markdown(tiny, tiny_figures)
    assert page(again_run, again) == page(tiny, tiny_figures)


def test_optional_files_and_keys_get_a_section_only_when_present(tiny: RunData) -> None:
    plain = markdown(tiny, {})
    for title in ("Metadata exposure", "Key rotations", "Agreement", "Bytes on the wire"):
        assert title not in plain
    extra = run_files(
        summary_json=json.dumps(
            summary(trust={"hub": 3, "bilateral": 3}, bytes_on_wire={"hub": [10, 20]})
        ).encode(),
        exposure_csv=b"party,sees_pairs,share\nhub,6,1.0\n<b>FR</b>,2,0.33\n",
        rotations_csv=b"day,country,seconds_until_trusted\n" + b"1,FR,3.5\n" * 60,
        agreement_json=json.dumps({"within_tolerance": True, "latency": {"p50": 0.01}}).encode(),
    )
    md = markdown(read_run(extra), {})
    assert "## Trust relationships (summary.json)" in md and "| bilateral | 3 |\n" in md
    assert "| hub\\[1\\] | 20 |" in md  # a list flattened by index
    assert "| party | sees\\_pairs | share |" in md and "| \\<b\\>FR\\</b\\> | 2 | 0.33 |" in md
    assert "The first 50 rows. All 60 rows are in rotations.csv" in md
    assert "| within\\_tolerance | true |" in md and "| latency.p50 | 0.01 |" in md


def test_a_run_without_outages_fees_or_hub_traffic_is_drawn_all_the_same() -> None:
    quiet = run_files(
        summary_json=json.dumps(
            summary(
                topology="bilateral",
                hub_queue_wait_seconds={"mean": None, "p99": None, "max": None},
                by_route={
                    "direct": {"certificates": 0},
                    "hub": {"certificates": 0},
                    "hub-fallback": {"certificates": 0},
                },
            )
        ).encode(),
        messages_csv=b"id,from,to,submitted,delivered,route,attempts\n",
        outages_csv=OUTAGES.splitlines()[0].encode() + b"\n",
        costs_csv=COSTS.splitlines()[0].encode() + b"\n",
    )
    run = read_run(quiet)
    md = markdown(run, drawn(run))
    assert "The scenario has no outages." in md
    assert "no hub fee models" in md


@pytest.mark.parametrize(
    ("replaced", "message"),
    [
        ({"summary_json": None}, "no summary.json"),
        ({"summary_json": b"{not json"}, "summary.json: not valid JSON"),
        ({"summary_json": b"[]"}, "not a JSON object"),
        ({"summary_json": b'{"scenario": NaN}'}, "NaN is not a JSON number"),
        ({"summary_json": b"\xff\xfe"}, "summary.json: not valid JSON"),
        ({"summary_json": b"[" * 100_000 + b"]" * 100_000}, "summary.json"),
        ({"summary_json": json.dumps(summary(seed=-1)).encode()}, "summary.json: seed"),
        ({"summary_json": json.dumps(summary(seed=True)).encode()}, "summary.json: seed"),
        ({"summary_json": json.dumps(summary(by_route={})).encode()}, "by_route.direct"),
        ({"summary_json": json.dumps(summary(period_days=0)).encode()}, "period_days"),
        ({"summary_json": json.dumps(summary(scenario="other")).encode()}, "'other'"),
        ({"pairs_csv": None}, "pairs.csv missing"),
        ({"tiny_toml": None}, "no copy of the scenario 'tiny'"),
        ({"tiny_toml": b"name = 'tiny'\n"}, "no copy of the scenario"),
        ({"messages_csv": b""}, "messages.csv: empty"),
        ({"messages_csv": b"id,from,to\n"}, "messages.csv: the header is not"),
        ({"messages_csv": MESSAGES.encode() + b"C7,FR\n"}, "messages.csv, line 8: 2 fields"),
        (
            {"messages_csv": MESSAGES.encode() + b"C7,FR,DE,nan,1,hub,1\n"},
            "messages.csv, line 8, submitted: 'nan' is not a number",
        ),
        (
            {"messages_csv": MESSAGES.encode() + b"C7,FR,DE,-1,1,hub,1\n"},
            "line 8, submitted: '-1'",
        ),
        (
            {"messages_csv": MESSAGES.encode() + b"C7,FR,DE,1,1e999,hub,1\n"},
            "delivered: '1e999' is too large",
        ),
        (
            {"messages_csv": MESSAGES.encode() + b"C7,FR,DE,1,2,<b>,1\n"},
            "route: '<b>' is not one of",
        ),
        ({"messages_csv": b"\xff" + MESSAGES.encode()}, "messages.csv: not UTF-8"),
        ({"messages_csv": MESSAGES.encode() + b'C7,"FR\n'}, "messages.csv, line 8"),
        ({"pairs_csv": PAIRS.encode() + b"\0,,,,,,,,\n"}, "pairs.csv: not a text file"),
        (
            {"hub_holdings_csv": b"hour,envelopes_held\n1,1.5\n"},
            "envelopes_held: '1.5' is not a whole number",
        ),
        (
            {"hub_holdings_csv": b"hour,envelopes_held\n1," + b"9" * 30 + b"\n"},
            "is not a whole number",
        ),
        (
            {"costs_csv": COSTS.encode().replace(b"FR,yes", b"FR,maybe")},
            "runs_node: 'maybe' is not one of yes, no",
        ),
        ({"exposure_csv": b"a,a\n1,2\n"}, "exposure.csv: the header has an empty or repeated"),
        ({"agreement_json": b"{" * 5000 + b"}" * 5000}, "agreement.json"),
    ],
)
def test_a_broken_run_is_refused_naming_what_is_wrong(
    replaced: dict[str, bytes | None], message: str
) -> None:
    with pytest.raises(InputError) as error:
        read_run(run_files(**replaced))
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_parquet_columns_are_typed_and_empty_cells_null() -> None:
    table = pq.read_table(io.BytesIO(to_parquet(parse_table("messages.csv", MESSAGES.encode()))))
    assert table.schema.field("submitted").type == pa.float64()
    assert table.schema.field("attempts").type == pa.int64()
    assert table.schema.field("route").type == pa.string()
    assert table.column("delivered").to_pylist()[-1] is None
    assert table.num_rows == 6
    # A file another command adds: types inferred, never guessed from Python's float().
    other = b"n,x,word,none,big,odd\n1,1.5,a,,99999999999999999999,nan\n-2,,b,,1,inf\n"
    inferred = pq.read_table(io.BytesIO(to_parquet(parse_table("transit.csv", other))))
    types = [field.type for field in inferred.schema]
    assert types == [pa.int64(), pa.float64(), pa.string(), pa.string(), pa.string(), pa.string()]
    assert inferred.column("x").to_pylist() == [1.5, None]
    assert inferred.column("none").to_pylist() == [None, None]


def test_parquet_refuses_a_known_column_that_is_not_its_type() -> None:
    broken = (PAIRS_HEADER + "FR,DE,hub,x,0,1,1,1,1\n").encode()
    with pytest.raises(InputError, match=r"pairs.csv, line 2, certificates: 'x'"):
        to_parquet(parse_table("pairs.csv", broken))


def test_the_numbers_the_report_and_figures_share(tiny: RunData) -> None:
    assert md1_wait(0.5, 2.0) == pytest.approx(1.0)
    assert md1_wait(0.0, 2.0) == 0.0
    assert math.isinf(md1_wait(1.0, 2.0))
    load = hub_load(tiny.summary)
    assert load.envelopes_per_day == pytest.approx(1.0)  # 3 through the hub in 3 days
    assert load.utilisation == pytest.approx(0.015 / 86_400)
    assert load.saturation_per_day == pytest.approx(86_400 / 0.015)
    assert [duration(s) for s in (0.1123, 59.0, 7200.0, 3 * 86_400.0, None)] == [
        "112 ms",
        "59 s",
        "2 h",
        "3 days",
        "-",
    ]
    assert significant(999.5) == "1,000" and significant(0.000123) == "0.000123"
    assert figures.ecdf_points([1.0, 2.0, 3.0], 10) == ([1.0, 2.0, 3.0], [1 / 3, 2 / 3, 1.0])
    x, y = figures.ecdf_points([float(i) for i in range(1000)], 5)
    assert x == [0.0, 250.0, 500.0, 749.0, 999.0] and y[-1] == 1.0


def test_deep_json_is_cut_not_recursed_without_end() -> None:
    deep: object = 1
    for _ in range(50):
        deep = {"a": deep}
    rows = flatten(deep)
    assert len(rows) == 1 and rows[0][0] == ".".join(["a"] * 8)
    assert rows[0][1].endswith("...") and len(rows[0][1]) == 203
