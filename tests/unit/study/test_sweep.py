"""The sweep's pure core (node/study/sweep.py): --vary specs, the grid, each point's
scenario and options, one run, and the side-by-side comparison."""

from __future__ import annotations

import csv
import io
from importlib import resources
from typing import Any

import pytest

from node.errors import InputError
from node.study import sweep
from node.study.outputs import run_summary
from node.study.scenario import parse_scenario
from node.study.simulate import Options, simulate

HYBRID = (resources.files("node.study") / "scenarios" / "hybrid.toml").read_bytes()

TINY = b"""name = "tiny"
period_days = 10
countries = [
  { code = "FR", region = "europe", node = true },
  { code = "DE", region = "europe", node = true },
  { code = "KE", region = "africa" },
  { code = "TZ", region = "africa" },
]
[topology]
kind = "hybrid"
top_k = 1
[trade]
seed = 3
certificates_per_year = 20000
[costs]
fee_models = [
  { name = "flat", kind = "prepaid", fee = 5 },
  { name = "free", kind = "prepaid", fee = 0 },
]
"""


def parsed(*specs: str, toml: bytes = HYBRID) -> tuple[sweep.Vary, ...]:
    return sweep.parse_vary(list(specs), sweep.document(toml))


def test_values_are_typed_as_the_scenario_format_reads_the_key() -> None:
    varies = parsed(
        "topology.top_k=1,5,10",
        "period_days = 30, 30.5",
        "node.fallback_attempts=1,3",  # hybrid.toml has no [node] table: still variable
        "topology.kind=hub,hybrid",
        "scale=0.001,2",
        "seed=0,7",
    )
    assert [(v.key, v.values) for v in varies] == [
        ("topology.top_k", (1, 5, 10)),
        ("period_days", (30, 30.5)),
        ("node.fallback_attempts", (1, 3)),
        ("topology.kind", ("hub", "hybrid")),
        ("scale", (0.001, 2)),
        ("seed", (0, 7)),
    ]
    assert isinstance(varies[0].values[0], int) and isinstance(varies[1].values[1], float)


def test_a_key_the_format_does_not_list_is_typed_by_the_files_value() -> None:
    # A key the format may gain later: where the file sets it, its value gives the type.
    document = sweep.document(TINY) | {"extra": {"flag": True, "ratio": 0.5}}
    varies = sweep.parse_vary(["extra.flag=true,false", "extra.ratio=1,2.5"], document)
    assert varies[0].values == (True, False) and varies[1].values == (1, 2.5)
    with pytest.raises(InputError, match="not true or false"):
        sweep.parse_vary(["extra.flag=1"], document)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("=", "KEY=V1,V2,... is required"),
        ("=1,2", "KEY=V1,V2,... is required"),
        ("topology.top_k", "KEY=V1,V2,... is required"),
        ("a=", "not a key of the scenario"),
        ("topology.top_k=", "no values for topology.top_k"),
        ("topology.top_k= , ", "an empty value"),
        ("topology.top_k=1,,2", "an empty value"),
        ("topology.top_k=1,", "an empty value"),
        ("topology.top_k=x", "'x' is not a whole number"),
        ("topology.top_k=1.5", "'1.5' is not a whole number"),
        ("topology.top_k=1_0", "'1_0' is not a whole number"),
        ("topology.top_k=\uff15", "is not a whole number"),  # a fullwidth 5
        ("topology.top_k=\u0663", "is not a whole number"),  # an Arabic-Indic 3
        ("topology.top_k=1,1", "listed twice"),
        ("period_days=30,30.0", "listed twice"),
        ("topology.top_k=true", "not a whole number"),
        ("period_days=nan", "not a number"),
        ("period_days=inf", "not a number"),
        ("period_days=1e999", "not a finite number"),
        ("period_days=0x10", "not a number"),
        ("countries=1", "countries is an array"),
        ("countries.code=FR", "countries is an array"),
        ("outages=1", "outages is an array"),
        ("costs.fee_models=1", "costs.fee_models is an array"),
        ("trade.seasonal_profile=1", "trade.seasonal_profile is an array"),
        ("links.pairs=1", "links.pairs is an array"),
        ("topology=hub", "topology is a table"),
        ("node=1", "node is a table"),
        ("unknown.key=1", "'unknown.key' is not a key of the scenario"),
        ("topology.top_k.deeper=1", "not a key of the scenario"),
        ("t\u00f6pology.top_k=1", "is not a key of the scenario"),
        ("Topology.top_k=1", "is not a key of the scenario"),
        ("topology..top_k=1", "is not a key of the scenario"),
        ("name=a\x00b", "control or unassigned character"),
        ("name=a\u202eb", "control or unassigned character"),
        ("name=" + "n" * 600, "longer than 500 characters"),
        ("scale=0", "scale 0 is not between"),
        ("scale=11", "scale 11 is not between"),
        ("scale=abc", "'abc' is not a number"),
        ("seed=-1", "seed -1 is not between"),
        ("seed=9223372036854775808", "is not between"),
        ("seed=99999999999999999999", "is not a whole number"),
        ("topology.top_k=" + ",".join(["1"] * 6000), "longer than 10,000 characters"),
    ],
)
def test_a_bad_spec_is_refused_naming_it(spec: str, message: str) -> None:
    with pytest.raises(InputError, match=r"^--vary") as caught:
        parsed(spec)
    assert message in str(caught.value)
    assert len(str(caught.value)) < 1200 and "\n" not in str(caught.value)


def test_a_key_given_twice_and_no_spec_at_all_are_refused() -> None:
    with pytest.raises(InputError, match=r"topology\.top_k is varied twice"):
        parsed("topology.top_k=1,2", "topology.top_k=3")
    with pytest.raises(InputError, match="give at least one"):
        parsed()


def test_a_grid_of_more_than_a_thousand_runs_is_refused_before_it_is_built() -> None:
    thousand = ",".join(str(s) for s in range(1000))
    assert len(sweep.grid(parsed(f"seed={thousand}"))) == 1000
    with pytest.raises(InputError, match="1,001 runs; a sweep has at most 1,000") as caught:
        parsed(f"seed={thousand},1000")
    assert "seed (1001 values)" in str(caught.value)
    # The product is what counts: 11 x 91 = 1,001, and a huge one is not materialised.
    with pytest.raises(InputError, match="1,001 runs"):
        parsed(
            "topology.top_k=" + ",".join(str(k) for k in range(1, 12)),
            "seed=" + ",".join(str(s) for s in range(91)),
        )
    many = ",".join(str(s) for s in range(1, 901))
    with pytest.raises(InputError, match="729,000,000 runs"):
        parsed(f"seed={many}", f"trade.seed={many}", f"hub.capacity_per_day={many}")


def test_the_grid_is_every_combination_the_last_spec_fastest_and_always_the_same() -> None:
    varies = parsed("topology.top_k=10,1", "hub.pull_interval_seconds=60,300,30")
    points = sweep.grid(varies)
    assert [p.index for p in points] == list(range(6))
    assert [tuple(v for _, v in p.settings) for p in points] == [
        (10, 60),
        (10, 300),
        (10, 30),
        (1, 60),
        (1, 300),
        (1, 30),
    ]
    assert sweep.grid(parsed("topology.top_k=10,1", "hub.pull_interval_seconds=60,300,30")) == (
        points
    )
    assert points[4].name == "run 4 (topology.top_k=1, hub.pull_interval_seconds=300)"


def test_each_point_is_the_file_with_its_values_read_by_the_scenario_parser() -> None:
    varies = parsed(
        "topology.top_k=2",
        "node.fallback_attempts=7",
        "period_days=30.5",
        "hub.pull_interval_seconds=60",
        "scale=0.5",
        "seed=9",
    )
    (point,) = sweep.grid(varies)
    scenario = sweep.point_scenario(HYBRID, point)
    base = parse_scenario(HYBRID)
    assert scenario.top_k == 2 and base.top_k == 5
    assert scenario.node_policy.fallback_attempts == 7
    assert scenario.period_days == 30.5
    assert scenario.pull_interval_seconds == 60
    # Everything not varied is as the file has it.
    assert scenario.countries == base.countries and scenario.costs == base.costs
    assert scenario.links == base.links and scenario.trade == base.trade
    options = sweep.point_options(point, Options(seed=1, scale=0.01))
    assert (options.scale, options.seed) == (0.5, 9)
    (plain,) = sweep.grid(parsed("topology.top_k=2"))
    assert sweep.point_options(plain, Options(seed=1, scale=0.01)) == Options(seed=1, scale=0.01)


@pytest.mark.parametrize(
    "name",
    sorted(
        e.name
        for e in (resources.files("node.study") / "scenarios").iterdir()
        if e.name.endswith(".toml")
    ),
)
def test_writing_a_bundled_file_back_changes_nothing(name: str) -> None:
    data = (resources.files("node.study") / "scenarios" / name).read_bytes()
    empty = sweep.Point(0, ())
    assert parse_scenario(sweep.variant_toml(sweep.document(data), empty)) == parse_scenario(data)


def test_every_format_key_the_sweep_lists_is_one_the_scenario_parser_knows() -> None:
    samples: dict[str, Any] = {"integer": 1, "number": 1.5, "text": "x", "boolean": True}
    for key, kind in sweep.FORMAT_KEYS.items():
        point = sweep.Point(0, ((key, samples[kind]),))
        try:
            sweep.point_scenario(TINY, point)
        except InputError as e:
            # A bad value for the key is fine here; a key the parser does not know is not.
            assert "unknown key" not in str(e), key


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("topology.kind=hub,bilateral", "run 1 (topology.kind=bilateral): topology.kind: "),
        ("topology.top_k=1,500", "run 1 (topology.top_k=500): topology.top_k: 500 is not"),
        ("name=ok,Not-Ok", "run 1 (name=Not-Ok): name: "),
        ("seed=1;trade.seed=2,-3", "run 1 (seed=1, trade.seed=-3): trade.seed: -3 is not"),
    ],
)
def test_a_points_validation_error_names_the_point(spec: str, message: str) -> None:
    first, failing = sweep.grid(parsed(*spec.split(";")))
    sweep.point_scenario(HYBRID, first)  # the first point is a valid scenario: no error
    with pytest.raises(InputError) as caught:
        sweep.point_scenario(HYBRID, failing)
    assert str(caught.value).startswith(message)


def test_imported_trade_is_refused_naming_the_point() -> None:
    imported = TINY.replace(
        b"seed = 3\ncertificates_per_year = 20000", b'source = "imported"\npath = "flows.csv"'
    )
    (point,) = sweep.grid(parsed("topology.top_k=1", toml=imported))
    with pytest.raises(InputError, match=r"^run 0 \(topology.top_k=1\): trade.source: a sweep"):
        sweep.point_scenario(imported, point)


def test_run_directories_sort_and_are_safe_names() -> None:
    document = sweep.document(TINY)
    varies = sweep.parse_vary(
        ["description=a/b,../..,\u00e9t\u00e9,x y", "seed=" + ",".join(map(str, range(3)))],
        document,
    )
    points = sweep.grid(varies)
    names = [p.directory(len(points)) for p in points]
    assert names[0] == "00-a-b_0" and names[3] == "03-..-.._0"
    assert names[6] == "06-t_0" and names[11] == "11-x-y_2"
    assert names == sorted(names) and len(set(names)) == len(names)
    assert all("/" not in n and n.isascii() for n in names)
    assert sweep.Point(0, (("name", "\u00e9"),)).directory(1) == "0-value"


def test_one_run_is_simulates_summary_with_the_hub_fees_per_fee_model() -> None:
    (point,) = sweep.grid(parsed("topology.top_k=2", "seed=4", toml=TINY))
    result = sweep.run_point(TINY, point, Options(seed=0, scale=1.0), "9.9")
    expected_run = simulate(sweep.point_scenario(TINY, point), Options(seed=4))
    assert result["summary"] == run_summary(expected_run, "9.9")
    assert result["index"] == 0
    assert result["settings"] == [["topology.top_k", 2], ["seed", 4]]
    hub_sent = sum(
        result["summary"]["by_route"][r]["certificates"] for r in ("hub", "hub-fallback")
    )
    assert hub_sent > 0
    assert result["hub_fees"] == {
        "flat": {"currency": "EUR", "total": 5 * hub_sent},
        "free": {"currency": "EUR", "total": 0},
    }


def test_the_comparison_has_a_row_per_run_in_grid_order() -> None:
    varies = parsed("hub.pull_interval_seconds=60,600", toml=TINY)
    points = sweep.grid(varies)
    results = [sweep.run_point(TINY, p, Options(), "1") for p in reversed(points)]
    table = sweep.comparison(varies, results)
    header = table[0]
    assert header[:4] == ["run", "hub.pull_interval_seconds", "certificates", "undelivered"]
    assert header[-3:] == ["hub_fees_flat", "hub_fees_free", "fee_currency"]
    assert [row[:2] for row in table[1:]] == [[0, 60], [1, 600]]
    column = header.index("hub_p50_seconds")
    by_index = {r["index"]: r for r in results}
    for row in table[1:]:
        run = by_index[row[0]]["summary"]
        assert row[2] == run["certificates"]
        assert row[column] == run["by_route"]["hub"]["p50_seconds"]
    # A slower pull makes the hub route slower: the rows are not copies of each other.
    first, second = table[1][column], table[2][column]
    assert isinstance(first, float) and isinstance(second, float) and first < second
    text = io.StringIO()
    csv.writer(text).writerows([[sweep.csv_cell(c) for c in row] for row in table])
    read = list(csv.reader(io.StringIO(text.getvalue())))
    assert len(read) == 3 and read[0] == header
    # A route no certificate took has no latency: an empty cell, not "None" or "nan".
    fallback = results[-1]["summary"]["by_route"]["hub-fallback"]
    cell = read[1][header.index("hub-fallback_p50_seconds")]
    assert cell == ("" if fallback["certificates"] == 0 else str(fallback["p50_seconds"]))


def test_sweep_md_is_one_table_and_text_values_cannot_break_it() -> None:
    varies = parsed("description=a|b,c\\d", toml=TINY)
    results = [sweep.run_point(TINY, p, Options(), "1") for p in sweep.grid(varies)]
    text = sweep.markdown(
        "tiny", Options(seed=3, scale=0.5), "1", sweep.comparison(varies, results)
    )
    lines = text.splitlines()
    assert lines[0] == "# Sweep of `tiny`"
    assert "2 runs varying description (scale 0.5, seed 3, code version 1)" in lines[2]
    rows = [line for line in lines if line.startswith("|")]
    assert len(rows) == 4
    assert "| a\\|b |" in rows[2] and "| c\\\\d |" in rows[3]
    # Every row has as many cells as the header: no value ends a cell early.
    cells = {len(row.replace("\\|", "").split("|")) for row in rows}
    assert len(cells) == 1
