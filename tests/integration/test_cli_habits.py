"""What a new user meets at the command line: flags anywhere, --version, help that shows
flags as flags, user text printed as written, output cut short by its reader (issue 9
item 8, issue 10 item 9)."""

from __future__ import annotations

import os
import resource
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cases import gap, source, state

from gcm_fund import __version__

COMMAND = [sys.executable, "-m", "gcm_fund"]


@pytest.fixture
def small(tmp_path: Path, write_case) -> tuple[Path, Path]:
    return write_case(tmp_path, states=[state("KEN"), state("UGA")],
                      gaps=[gap("KEN", "10.7", 1e6), gap("UGA", "8.8", 2e6)],
                      sources=[source("a", 2e6)])


def test_version_prints_the_version(cli) -> None:
    result = cli("--version")
    assert (result.returncode, result.stdout) == (0, f"gcm-fund {__version__}\n")


@pytest.mark.parametrize("flag", ["-v", "--verbose"])
def test_verbose_is_accepted_after_the_command_too(cli, small, flag: str) -> None:
    inputs, model = small
    before = cli(flag, "validate", inputs, "--model", model)
    after = cli("validate", inputs, "--model", model, flag)
    assert before.returncode == after.returncode == 0
    assert before.stdout == after.stdout
    assert "loaded" in after.stderr


def test_a_word_after_double_dash_is_an_argument_even_if_spelled_like_a_flag(cli) -> None:
    result = cli("validate", "--", "-v")
    assert (result.returncode, result.stderr) == (2, "1 problem in the input:\n-v: input "
                                                    "folder not found\n")


@pytest.mark.parametrize("command", [[], ["allocate"], ["sweep"]])
def test_help_shows_flags_without_a_value_type(cli, command: list[str]) -> None:
    text = cli(*command, "--help").stdout
    assert "<bool>" not in text
    assert "--help" in text


@pytest.mark.parametrize("command", [[], ["allocate"]])
def test_dash_h_is_help_too(cli, command: list[str]) -> None:
    short, long = cli(*command, "-h"), cli(*command, "--help")
    assert short.returncode == long.returncode == 0
    assert short.stdout == long.stdout


def test_help_still_shows_the_type_of_an_option_that_takes_a_value(cli) -> None:
    text = cli("allocate", "--help").stdout
    assert "<path>" in text


def test_an_out_folder_with_rich_markup_in_its_name_is_printed_as_written(cli, small,
                                                                          tmp_path: Path
                                                                          ) -> None:
    inputs, model = small
    folder = tmp_path / "run[/x]"
    result = cli("allocate", inputs, "--model", model, "--out", folder)
    assert result.returncode == 0, result.stderr
    assert f"written to {folder}\n" in result.stdout
    assert (folder / "manifest.json").is_file()


def test_a_policy_name_with_brackets_is_printed_as_written(cli, small, tmp_path: Path) -> None:
    inputs, _ = small
    model = tmp_path / "baseline [final].toml"
    model.write_text("", encoding="utf-8")
    result = cli("validate", inputs, "--model", model)
    assert "under policy baseline [final])" in result.stdout


def assert_quiet_into_a_closed_pipe(words: list[str]) -> None:
    """`gcm-fund WORDS | true` (a reader that closes the pipe at once: every write after
    that fails with EPIPE) ends with status 0 and no traceback, three times over."""
    command = subprocess.list2cmdline([*COMMAND, *words])
    shell = f"{command} | true; echo status=${{PIPESTATUS[0]}}"
    for _ in range(3):
        done = subprocess.run(["bash", "-c", shell], capture_output=True, text=True)
        assert done.stdout.strip() == "status=0", done.stderr
        assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr


def test_output_piped_into_head_ends_quietly_with_status_0(small) -> None:
    inputs, model = small
    assert_quiet_into_a_closed_pipe(["validate", str(inputs), "--model", str(model)])


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_output_to_a_full_disk_is_a_clear_message_and_status_74(small) -> None:
    inputs, model = small
    with open("/dev/full", "w") as full:
        done = subprocess.run([*COMMAND, "validate", str(inputs), "--model", str(model)],
                              stdout=full, stderr=subprocess.PIPE, text=True)
    assert done.returncode == 74
    assert done.stderr == ("error: cannot write the output to standard output: No space left "
                           "on device\n")


def test_a_run_folder_is_created_with_the_users_umask(cli, small, tmp_path: Path) -> None:
    inputs, model = small
    previous = os.umask(0o027)
    try:
        result = cli("allocate", inputs, "--model", model, "--out", tmp_path / "run")
    finally:
        os.umask(previous)
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE((tmp_path / "run").stat().st_mode) == 0o750
    assert stat.S_IMODE((tmp_path / "run" / "manifest.json").stat().st_mode) == 0o640


def _small_file_limit() -> None:
    # Writes past 4 kB fail with EFBIG and no file name, as a full disk's ENOSPC does.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))


def test_a_write_that_fails_for_lack_of_space_names_the_path(small, tmp_path: Path) -> None:
    inputs, model = small
    big = tmp_path / "big_inputs"
    big.mkdir()
    for name in ("states.csv", "sources.csv"):
        (big / name).write_bytes((inputs / name).read_bytes())
    rows = ["iso3,target,need_usd"] + [f"KEN,{g}.{t},1000000" for g in range(1, 18)
                                       for t in range(1, 30)]
    (big / "gaps.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    out = tmp_path / "run"
    done = subprocess.run([*COMMAND, "allocate", str(big), "--model", str(model), "--out",
                           str(out)], preexec_fn=_small_file_limit, capture_output=True,
                          text=True)
    assert (done.returncode, done.stderr) == (2, f"error: {out}: File too large\n")
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_help_and_validate_import_no_table_solver_or_sparse_matrix_library(small) -> None:
    inputs, model = small
    probe = ("import sys, atexit\n"
             "atexit.register(lambda: print(sorted(m for m in ('pandas', 'scipy', 'highspy', "
             "'pulp', 'matplotlib') if m in sys.modules), file=sys.__stderr__))\n"
             "from gcm_fund.cli.app import main\n"
             "sys.argv = ['gcm-fund', *sys.argv[1:]]\n"
             "main()\n")
    loaded = {}
    for name, args in (("help", ["--help"]), ("validate", ["validate", str(inputs), "--model",
                                                             str(model)])):
        done = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True,
                              text=True)
        assert done.returncode == 0, done.stderr
        loaded[name] = done.stderr.strip().splitlines()[-1]
    assert loaded == {"help": "[]", "validate": "[]"}


def validate_at_exit(at_exit: str, unset: str, inputs: Path, model: Path) -> str:
    """`gcm-fund validate` in a process that first runs `at_exit` (Python that may register
    what to print to stderr at exit; `sys` and `atexit` are imported), with the
    environment variable `unset` left unset, so that gcm-fund sets its own default; the
    last line of stderr."""
    probe = ("import sys, atexit\n" + at_exit + "from gcm_fund.cli.app import main\n"
             "sys.argv = ['gcm-fund', *sys.argv[1:]]\n"
             "main()\n")
    env = {k: v for k, v in os.environ.items() if k != unset}
    done = subprocess.run([sys.executable, "-c", probe, "validate", str(inputs), "--model",
                           str(model)], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    return done.stderr.strip().splitlines()[-1]


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads /proc's thread times")
def test_a_command_leaves_no_blas_thread_spinning_on_the_other_core(small) -> None:
    inputs, model = small
    # CPU ticks of every thread but the main one, 0.3 s after the command: OpenBLAS's
    # worker, left to its default wait, spins through about 0.1 s of them.
    at_exit = ("import os, time\n"
               "def others():\n"
               "    time.sleep(0.3)\n"
               "    task = f'/proc/{os.getpid()}/task'\n"
               "    stats = [open(f'{task}/{t}/stat').read().rsplit(')', 1)[1].split()\n"
               "             for t in os.listdir(task) if t != str(os.getpid())]\n"
               "    print(sum(int(s[11]) + int(s[12]) for s in stats), file=sys.__stderr__)\n"
               "atexit.register(others)\n")
    ticks = int(validate_at_exit(at_exit, "OPENBLAS_THREAD_TIMEOUT", inputs, model))
    assert ticks <= os.sysconf("SC_CLK_TCK") // 100  # at most 0.01 s: start-up only


def test_a_command_does_not_scan_the_installed_packages_for_pydantic_plugins(small) -> None:
    inputs, model = small
    at_exit = ("import pydantic.plugin._loader as plugins\n"
               "atexit.register(lambda: print(plugins._plugins, file=sys.__stderr__))\n")
    last = validate_at_exit(at_exit, "PYDANTIC_DISABLE_PLUGINS", inputs, model)
    assert last == "None"  # the entry points never read


def test_a_flag_spelled_value_of_an_option_stays_its_value(cli, small) -> None:
    inputs, model = small
    # `--source -v` names a source called `-v` (SPEC's ids allow it), not the verbose flag.
    result = cli("sweep", inputs, "--model", model, "--source", "-v", "--pledges", "0:1:2",
                 "--out", inputs.parent / "s.csv", "-v")
    assert result.returncode == 2
    assert "'-v'" in result.stderr and "loaded" in result.stderr


@pytest.mark.parametrize("kind", ["a device", "a FIFO (named pipe)"])
def test_out_naming_a_device_or_fifo_is_refused_for_what_it_is(cli, small, tmp_path: Path,
                                                               kind: str) -> None:
    inputs, model = small
    if kind == "a device":
        target = Path("/dev/null")
    else:
        target = tmp_path / "fifo"
        os.mkfifo(target)
    run = cli("allocate", inputs, "--model", model, "--out", target, "--force")
    assert (run.returncode, run.stderr) == (
        2, f"error: {target}: is {kind}, not a folder; --out names the folder the run is "
           "written to\n")
    # Even with --force: replacing it would put a regular file where /dev/null was.
    table = cli("fair-share", inputs, "--model", model, "--out", target, "--force")
    assert (table.returncode, table.stderr) == (
        2, f"error: {target}: is {kind}, not a file; --out names the file to write\n")
    assert Path("/dev/null").is_char_device()


@pytest.mark.parametrize("words", [["--help"], ["-h"], ["--version"], ["allocate", "--help"]])
def test_help_and_version_piped_into_head_end_quietly_with_status_0(words: list[str]) -> None:
    # Help and the version print while the command line is parsed, before any command runs.
    assert_quiet_into_a_closed_pipe(words)


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize("words", [["--help"], ["--version"], ["allocate", "--help"]])
def test_help_and_version_to_a_full_disk_are_a_clear_message_and_status_74(
        words: list[str]) -> None:
    with open("/dev/full", "w") as full:
        done = subprocess.run([*COMMAND, *words], stdout=full, stderr=subprocess.PIPE,
                              text=True)
    assert done.returncode == 74
    assert done.stderr == ("error: cannot write the output to standard output: No space left "
                           "on device\n")
