"""Legal but unusual input that once crashed or was silently misread (issue 9, items 8-10).

Each test is named after the case it pins down.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cases import gap, source, state

from gcm_fund import api
from gcm_fund.analyses.sweep import MAX_LEVELS, parse_levels
from gcm_fund.errors import InputError, UsageError
from gcm_fund.inputs.load import load_inputs
from gcm_fund.inputs.policy_file import TomlLines, find_toml_line, load_policy
from gcm_fund.outputs.results import floor_text


def problems_of(excinfo: pytest.ExceptionInfo[InputError]) -> list[str]:
    return [str(p) for p in excinfo.value.problems]


# ---------------------------------------------------------------------------------------
# Item 8: crashes on legal input


def test_a_deeply_nested_policy_array_is_a_problem_not_a_recursion_error(tmp_path: Path) -> None:
    policy = tmp_path / "deep.toml"
    policy.write_text("a = " + "[" * 3000 + "]" * 3000 + "\n", encoding="utf-8")
    with pytest.raises(InputError) as excinfo:
        load_policy(policy)
    assert problems_of(excinfo) == [
        f"{policy}: not valid TOML for a policy: arrays or inline tables nested too deeply "
        "to read"]


def test_deeply_nested_dotted_keys_are_a_problem_not_a_recursion_error(tmp_path: Path) -> None:
    policy = tmp_path / "deep.toml"
    policy.write_text('[weights.target]\n"1"' + ".a" * 3000 + " = 1\n", encoding="utf-8")
    with pytest.raises(InputError) as excinfo:
        load_policy(policy)
    [problem] = problems_of(excinfo)
    assert problem.startswith(f"{policy}:2: weights.target.1.a.a.")
    assert problem.endswith("tables nested more than 16 deep: a policy's keys are at most 3 "
                            'deep (weights.target."10.7")')


def test_a_policy_file_name_that_is_not_utf8_gives_a_readable_policy_name(tmp_path: Path
                                                                          ) -> None:
    path = Path(os.fsdecode(bytes(tmp_path) + b"/p\xff.toml"))
    path.write_text("", encoding="utf-8")
    policy = load_policy(path).policy
    assert policy.name == "p\ufffd"
    policy.name.encode("utf-8")  # a UTF-8 writer (manifest, report.html) accepts it


@pytest.mark.parametrize("count", [MAX_LEVELS + 1, 999_999_999_999])
def test_sweep_levels_above_the_documented_limit_are_a_usage_error(count: int) -> None:
    with pytest.raises(UsageError, match=f"N must be at most 10,000, got {count:,}"):
        parse_levels(f"0:1e9:{count}")


def test_sweep_levels_at_the_limit_are_accepted() -> None:
    assert len(parse_levels(f"0:1e9:{MAX_LEVELS}")) == MAX_LEVELS


def test_a_sweep_whose_highest_level_exceeds_the_total_allocate_accepts_is_refused(
        tmp_path: Path, write_case) -> None:
    inputs, policy = write_case(
        tmp_path, states=[state("KEN")], gaps=[gap("KEN", "10.7", 1e6)],
        sources=[source("a", 1e6), source("b", 2e14)])
    with pytest.raises(UsageError, match=(r"--pledges: at the highest level, USD 9e\+14, the "
                                          r"pledges add up to USD 1\.1e\+15, above USD 1e\+15")):
        api.sweep(inputs, ["a"], "0:9e14:3", model=policy)
    with pytest.raises(UsageError, match="above USD 1e"):
        api.sweep(inputs, ["a"], "0:1e300:3", model=policy)
    assert api.sweep(inputs, ["a"], "0:8e14:2", model=policy).result is not None


# ---------------------------------------------------------------------------------------
# Item 9: silent wrong answers


def region_warnings(tmp_path: Path, write_case, region: str) -> tuple[Path, list[str]]:
    """The input folder and its warnings, with UGA's region `region` beside KEN's Africa
    and a source earmarked for Africa."""
    inputs, _ = write_case(
        tmp_path,
        states=[state("KEN", region="Africa"), state("UGA", region=region)],
        gaps=[gap("KEN", "10.7", 1e6), gap("UGA", "10.7", 1e6)],
        sources=[source("afdb", 1e6, regions="Africa")],
    )
    return inputs, [str(w) for w in load_inputs(inputs).warnings]


@pytest.mark.parametrize("region", ["africa", "Africa\u200b", "AFRICA", "\u200dAfrica",
                                    "Afr\u00a0ica"])
def test_a_region_that_differs_from_an_earmark_only_in_case_or_invisibles_is_warned(
        tmp_path: Path, write_case, region: str) -> None:
    inputs, warnings = region_warnings(tmp_path, write_case, region)
    assert warnings == [
        f"{inputs / 'states.csv'}:3: region: {region!r} is not 'Africa', the region earmarked "
        f"by {inputs / 'sources.csv'} line 2, so that earmark leaves UGA out (did you mean "
        "'Africa'?)"]


@pytest.mark.parametrize(("region", "scripts"), [("\u0410frica", "Cyrillic"),
                                               ("Afric\u0430", "Cyrillic"),
                                               ("\u0391fric\u0430", "Cyrillic, Greek")])
def test_a_region_spelt_with_look_alike_letters_of_another_script_is_warned(
        tmp_path: Path, write_case, region: str, scripts: str) -> None:
    inputs, warnings = region_warnings(tmp_path, write_case, region)
    assert warnings == [
        f"{inputs / 'states.csv'}:3: region: {region!r}, which has letters that only look "
        f"Latin ({scripts}) is not 'Africa', the region earmarked by "
        f"{inputs / 'sources.csv'} line 2, so that earmark leaves UGA out (did you mean "
        "'Africa'?)"]


def test_a_region_in_another_script_that_is_not_a_look_alike_is_not_warned(
        tmp_path: Path, write_case) -> None:
    assert region_warnings(tmp_path, write_case, "Африка")[1] == []


def test_a_region_that_matches_its_earmark_exactly_is_not_warned(tmp_path: Path,
                                                                  write_case) -> None:
    inputs, _ = write_case(
        tmp_path, states=[state("KEN", region="Africa"), state("MEX", region="Americas")],
        gaps=[gap("KEN", "10.7", 1e6)], sources=[source("afdb", 1e6, regions="Africa")])
    assert load_inputs(inputs).warnings == []


@pytest.mark.parametrize(("code", "hint"), [
    ("08.7", "no leading zeros: 8.7"),
    ("8.07", "no leading zeros: 8.7"),
    ("0.0", "goals are numbered 1 to 17"),
    ("18.1", "goals are numbered 1 to 17"),
    ("10.0", "targets are numbered from 1"),
])
def test_target_codes_with_leading_zeros_or_out_of_range_are_errors(
        tmp_path: Path, write_case, code: str, hint: str) -> None:
    inputs, _ = write_case(tmp_path, states=[state("KEN")],
                           gaps=[gap("KEN", "8.7", 1e6), gap("KEN", code, 1e6)],
                           sources=[source("a", 1e6)])
    with pytest.raises(InputError) as excinfo:
        load_inputs(inputs)
    assert problems_of(excinfo) == [
        f"{inputs / 'gaps.csv'}:3: target: got {code!r}, expected an SDG target code such as "
        f"10.7 or 10.c ({hint})"]


def test_a_source_id_that_starts_like_a_formula_is_warned(tmp_path: Path, write_case) -> None:
    inputs, _ = write_case(tmp_path, states=[state("KEN")], gaps=[gap("KEN", "10.7", 1e6)],
                           sources=[source("-2-3", 1e6)])
    assert [str(w) for w in load_inputs(inputs).warnings] == [
        f"{inputs / 'sources.csv'}:2: source_id: '-2-3' starts with '-', which a spreadsheet "
        "reads as a formula: an id starting with a letter or digit is safer"]


# ---------------------------------------------------------------------------------------
# Item 10: small things


def test_policy_key_lookup_is_linear_in_the_number_of_keys(tmp_path: Path) -> None:
    # 10,000 unknown keys, each message placed on its line: quadratic look-ups took over
    # 300 s here, the index reads the text once (no wall time asserted).
    lines = ["[cofinancing]", *(f"k{i} = 1" for i in range(10_000))]
    text = "\n".join(lines) + "\n"
    index = TomlLines(text)
    assert index.line(("cofinancing", "k9999")) == 10_001
    assert index.line(("cofinancing", "k0")) == 2
    assert index.line(("cofinancing",)) == 1
    policy = tmp_path / "many.toml"
    policy.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as excinfo:
        load_policy(policy)
    assert len(excinfo.value.problems) == 10_000
    assert str(excinfo.value.problems[-1]) == f"{policy}:10001: cofinancing.k9999: unknown key"


@pytest.mark.parametrize(("text", "path", "line"), [
    ('[weights.target]\n"10.7" = 2\n', ("weights", "target", "10.7"), 2),
    ("[weights.target]\n10.7 = 2\n", ("weights", "target", "10.7"), 2),
    ("[weights]\nincome = { LIC = 2 }\n", ("weights", "income", "LIC"), 2),
    ("[weights.income]\nLIC = 2\n[weights.role]\n", ("weights", "role", "x"), 3),
    ("[a.b]\nc = 1\n[a.b.d]\n", ("a",), 2),
    ("[a]\nx.y = 1\n[a.c]\n[a]\n", ("a", "z"), 4),
    ("[x]\n[a.b.d]\n[a.b.e]\n", ("a", "b"), 2),
    ("x = 1\n", ("y",), None),
])
def test_the_line_index_agrees_with_the_one_look_up_form(text: str, path: tuple[str, ...],
                                                         line: int | None) -> None:
    assert find_toml_line(text, path) == line
    assert TomlLines(text).line(path) == line


@pytest.mark.parametrize(("target", "kind"), [("/dev/null", "a device"),
                                              ("fifo", "a FIFO (named pipe)")])
def test_a_device_or_fifo_is_named_for_what_it_is_not_a_folder(tmp_path: Path, target: str,
                                                               kind: str) -> None:
    if target == "fifo":
        os.mkfifo(tmp_path / "fifo")
        target = str(tmp_path / "fifo")
    with pytest.raises(InputError) as excinfo:
        load_policy(target)
    assert problems_of(excinfo) == [f"{target}: expected a policy file, found {kind}"]
    with pytest.raises(InputError) as excinfo:
        load_inputs(target)
    assert problems_of(excinfo) == [
        f"{target}: expected a folder with states.csv, gaps.csv and sources.csv, found {kind}"]
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    (inputs / "states.csv").symlink_to(target)
    with pytest.raises(InputError) as excinfo:
        load_inputs(inputs)
    assert f"{inputs / 'states.csv'}: expected a file, found {kind}" in problems_of(excinfo)


def test_a_floor_rounded_below_zero_shows_as_zero_percent() -> None:
    assert floor_text(-1e-12, None) == "0.00%"
    assert floor_text(0.17014, None, 4) == "17.0140%"


@pytest.mark.parametrize(("pledge", "policy", "reason", "page"), [
    (0.0, None, "every pledge is 0, so no gap can receive money",
     "every pledge is 0, so no gap can receive money"),
    (1e6, '[equity]\ngroup = "ldc"\n', "no gap in the equity group ldc",
     "no gap is in the policy&#x27;s equity group"),
    (1e6, '[equity]\ngroup = "HIC"\n[cofinancing]\nHIC = 0.0\n',
     "no gap in the equity group HIC can receive money (earmarks, absorption, debt distress "
     "or a co-financing share of 0 leave each without a source)",
     "no gap in the policy&#x27;s equity group can receive money"),
])
def test_a_run_without_a_floor_says_the_real_reason(tmp_path: Path, write_case, pledge: float,
                                                    policy: str | None, reason: str,
                                                    page: str) -> None:
    inputs, model = write_case(tmp_path, states=[state("KEN"), state("DEU", "HIC")],
                               gaps=[gap("KEN", "10.7", 1e6), gap("DEU", "10.7", 1e6)],
                               sources=[source("a", pledge)], policy=policy)
    run = api.allocate(inputs, model, out=tmp_path / "run")
    assert run.summary["floor"] is None
    assert run.summary["floor_reason"] == reason
    assert floor_text(None, reason) == f"none ({reason})"
    # The page, rebuilt from the folder alone, gives the same reason in its words.
    assert page in (tmp_path / "run" / "report.html").read_text(encoding="utf-8")
