"""contrib/cairnctl.bash-completion: completes commands, output formats,
member subcommands and command flags."""

import os
import subprocess

import clihelp as H

COMPLETION = os.path.join(H.ROOT, "contrib", "cairnctl.bash-completion")


def complete(*words):
    script = ('source %s; COMP_WORDS=(%s); COMP_CWORD=%d; _cairnctl; '
              'printf "%%s\\n" "${COMPREPLY[@]}"'
              % (COMPLETION, " ".join("'%s'" % w for w in words),
                 len(words) - 1))
    out = subprocess.run(["bash", "--norc", "-c", script],
                         stdout=subprocess.PIPE, check=True).stdout.decode()
    return sorted(x for x in out.split("\n") if x)


def test_completion_commands_flags_and_values():
    assert complete("cairnctl", "wa") == ["watch"]
    assert complete("cairnctl", "-o", "json", "re") == ["register"]
    assert complete("cairnctl", "-o", "e") == ["extended"]
    assert complete("cairnctl", "member", "") == ["add", "list", "remove",
                                                  "update"]
    assert complete("cairnctl", "ls", "--r") == ["--recursive"]
    assert complete("cairnctl", "--no-s") == ["--no-sync"]
    assert complete("cairnctl", "help", "lo") == ["lock", "lookup"]
    assert complete("cairnctl", "rm", "--with-") == ["--with-index",
                                                     "--with-value"]
