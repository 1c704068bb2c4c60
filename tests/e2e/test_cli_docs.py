"""`waggle completions SHELL` and `waggle man`: generated from the command line, they load in
the real shell and render with the real man-page formatter, and need no configuration."""

import os
import re
import shutil
import subprocess

import pytest
from helpers import waggle_binary


def waggle_output(*args):
    # A config file that does not exist would stop `waggle run`; these must not read it.
    done = subprocess.run(
        [waggle_binary(), *args],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": "/usr/bin:/bin", "WAGGLE_CONFIG": "/nonexistent/waggle.toml"},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_bash_completions_load_and_complete_the_subcommands(tmp_path):
    script = tmp_path / "waggle.bash"
    script.write_text(waggle_output("completions", "bash"))
    probe = (
        f"source {script}; COMP_WORDS=(waggle he); COMP_CWORD=1; COMP_LINE='waggle he'; COMP_POINT=9; "
        "_waggle waggle he waggle; printf '%s\\n' \"${COMPREPLY[@]}\""
    )

    done = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, timeout=30)

    assert done.returncode == 0, done.stderr
    assert "health" in done.stdout.split(), done.stdout


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_zsh_and_fish_completions_are_generated(shell):
    script = waggle_output("completions", shell)
    assert "waggle" in script and "health" in script


def test_the_man_page_renders_without_warnings():
    if shutil.which("groff") is None:
        # .ci/run installs it; elsewhere the test is skipped.
        assert not os.environ.get("CI"), "groff is missing: .ci/run installs it"
        pytest.skip("groff is not installed")
    page = waggle_output("man")

    # -k: preconv reads the page as UTF-8, as man(1) does.
    done = subprocess.run(["groff", "-k", "-man", "-Tutf8", "-ww"], input=page, capture_output=True, text=True, timeout=30)

    assert done.returncode == 0 and not done.stderr.strip(), done.stderr
    plain = re.sub(r".\x08|\x1b\[[0-9;]*m", "", done.stdout)
    assert "--data-dir <DIR>" in plain and "WAGGLE HEALTH" in plain


def test_an_unknown_shell_is_refused_with_the_choices():
    done = subprocess.run([waggle_binary(), "completions", "tcsh"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert "bash" in done.stderr and "fish" in done.stderr
