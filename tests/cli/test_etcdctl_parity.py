"""cairnctl against the real etcdctl (ETCDCTL_API=2): the same scripts of
commands through both tools against one running server (the server under
test: cairn, or etcd with CAIRN_TEST_TARGET=etcd), comparing stdout, stderr
and exit codes after the normalisation described in clihelp.py.

Run: /usr/bin/python3 -m pytest -q tests/cli   (make check-cli)
"""

import os
import signal
import time

import pytest

import clihelp as H

OUTPUTS = ["simple", "extended", "json"]


@pytest.fixture(scope="module", autouse=True)
def cairnctl_built():
    if not os.path.exists(H.cairnctl_bin()):
        pytest.fail("cairnctl not built: %s (make)" % H.cairnctl_bin(),
                    pytrace=False)


def S(*args, stdin=None, mode="exact", env=None):
    return {"args": list(args), "stdin": stdin, "mode": mode, "env": env}


def run_script(server, tool, steps, glob=()):
    url = server.client_url
    H.wipe(url)
    b = H.base(url)
    results = []
    for st in steps:
        args = [a.format(B=b) if isinstance(a, str) else str(a)
                for a in st["args"]]
        rc, out, err = H.run(tool, list(glob) + args, url, stdin=st["stdin"],
                             env=st["env"])
        if st["mode"] == "unordered":
            out = H.unordered(out)
        out, err = H.norm(out, b), H.norm(err, b)
        if st["mode"] == "usage":
            out = out.splitlines()[0] if out else ""
        results.append((" ".join(st["args"]), rc, out, err))
    return results


def compare(server, steps, glob=()):
    want = run_script(server, "etcdctl", steps, glob)
    got = run_script(server, "cairnctl", steps, glob)
    problems = []
    for w, g in zip(want, got):
        if w != g:
            problems.append("command: %s\n etcdctl: rc=%s out=%r err=%r\n"
                            "cairnctl: rc=%s out=%r err=%r"
                            % (w[0], w[1], w[2], w[3], g[1], g[2], g[3]))
    assert not problems, "\n".join(problems)


KEY_SCRIPT = [
    S("set", "/a", "one"),
    S("get", "/a"),
    S("set", "/a", "two"),
    S("set", "--ttl", "100", "/t", "x"),
    S("get", "/t"),
    S("mk", "/b", "new"),
    S("mk", "/b", "again"),
    S("update", "/b", "upd"),
    S("update", "/nope", "x"),
    S("set", "--swap-with-value", "two", "/a", "three"),
    S("set", "--swap-with-value", "zz", "/a", "four"),
    S("set", "--swap-with-index", "{B}", "/a", "five"),
    S("set", "/sp ace/x&y", "a b&c=d"),
    S("get", "/sp ace/x&y"),
    S("set", "/esc", "<a>&\"\t\\"),
    S("get", "/esc"),
    S("set", "/fromstdin", stdin="piped value\n"),
    S("get", "/fromstdin"),
    S("set", "/a/b", "x"),
    S("get", "/nope"),
    S("mk", "--in-order", "/q", "first"),
    S("mk", "--in-order", "--ttl", "100", "/q", "second"),
    S("ls", "--sort", "/q"),
    S("mkdir", "/d"),
    S("mkdir", "/d"),
    S("get", "/d"),
    S("set", "/d", "v"),
    S("setdir", "/d"),
    S("setdir", "--ttl", "100", "/sd"),
    S("updatedir", "--ttl", "200", "/sd"),
    S("updatedir", "/nodir"),
    S("set", "/d/k", "v"),
    S("rmdir", "/d"),
    S("rm", "/d"),
    S("rm", "--dir", "/d"),
    S("rm", "--with-value", "nope", "/a"),
    S("rm", "--with-value", "three", "/a"),
    S("rm", "--with-index", "{B}", "/b"),
    S("rm", "/b"),
    S("rm", "-r", "/d"),
    S("rm", "/nope"),
    S("rm", "/"),
    S("rmdir", "/sd"),
    S("set", "/t", "y"),
    S("rm", "--recursive", "/q"),
    S("ls", "--sort", "-p", "-r"),
    S("ls", "-r", mode="unordered"),
    S("ls", "/t"),
    S("ls", "/nope"),
    S("get", "/a", "extra-arg"),
]


@pytest.mark.parametrize("output", OUTPUTS)
def test_keys_script_matches_etcdctl(server, output):
    compare(server, KEY_SCRIPT, glob=["-o", output])


def test_ls_outputs_match_etcdctl(server):
    setup = [S("set", "/x/a", "1"), S("set", "/x/b/c", "2"), S("mkdir", "/y")]
    steps = setup + [S("ls", mode="unordered"), S("ls", "-p", mode="unordered"),
                     S("ls", "-r", "-p", mode="unordered"),
                     S("-o", "json", "ls", "-r", mode="unordered"),
                     S("-o", "extended", "ls", "/"),
                     S("-o", "json", "ls", "--sort", "/x"),
                     S("ls", "--quorum", "--sort", "/x")]
    compare(server, steps)


USAGE_SCRIPT = [
    S("set", mode="usage"),
    S("set", "/k", mode="usage"),
    S("get", mode="usage"),
    S("mk", "/k", mode="usage"),
    S("rm", mode="usage"),
    S("rmdir", mode="usage"),
    S("mkdir", mode="usage"),
    S("watch", mode="usage"),
    S("exec-watch", "/k", mode="usage"),
    S("set", "--ttl=abc", "/k", "v", mode="usage"),
    S("set", "--bogus", "/k", "v", mode="usage"),
    S("--bogus", "get", "/k", mode="usage"),
    S("bogus", mode="usage"),
    S("help", "bogus", mode="usage"),
    S("member", "bogus", mode="usage"),
    S("member", "list", "extra", mode="usage"),
    S("member", "remove", mode="usage"),
    S("member", "add", "onlyname", mode="usage"),
    S("member", "update", "x", mode="usage"),
    S("member", "add", "x", "notaurl", mode="usage"),
    S("member", "add", "x", "http://nohostport", mode="usage"),
    S("member", "remove", "1234", mode="usage"),
    S("member", "update", "1234", "http://127.0.0.1:1", mode="usage"),
    S("-o", "xml", "get", "/k", mode="usage"),
    S("set", "--", "/dash", "-v"),
    S("get", "--", "/dash"),
    S("set", "/late", "v", "--ttl", "100"),
    S("-o", "extended", "get", "/late"),
]


def test_usage_and_errors_match_etcdctl(server):
    compare(server, USAGE_SCRIPT)


def test_help_exit_codes_match_etcdctl(server):
    for args in (["--help"], [], ["help"], ["help", "set"], ["set", "--help"],
                 ["get", "-h"], ["member"], ["watch", "--help"]):
        w = H.run("etcdctl", args, server.client_url)
        g = H.run("cairnctl", args, server.client_url)
        assert w[0] == g[0] == 0, args
        assert w[2] == g[2] == "", args
        first_w = w[1].splitlines()[:2]
        first_g = g[1].splitlines()[:2]
        assert [x.replace("etcdctl", "X") for x in first_w][0] == \
            [x.replace("cairnctl", "X") for x in first_g][0], args


def test_member_and_cluster_health_match_etcdctl(server):
    url = server.client_url
    peer = server.peer_url
    steps = [S("member", "list"), S("cluster-health"),
             S("--no-sync", "member", "list"),
             S("member", "update", "{ID}", peer)]
    _, body, _ = H.http(url, "GET", "/v2/members")
    mid = body["members"][0]["id"]
    for st in steps:
        st["args"] = [a.replace("{ID}", mid) for a in st["args"]]
    compare(server, steps)


def test_endpoints_failover_and_errors_match_etcdctl(server):
    url = server.client_url
    dead = "http://127.0.0.1:%d" % H_free_port()
    both = dead + "," + url
    steps = [
        S("set", "/k", "v"),
        S("--endpoints", both, "--no-sync", "get", "/k"),
        S("--endpoints", both, "get", "/k"),
        S("-C", both, "--no-sync", "get", "/k"),
        S("--peers", both, "get", "/k"),
        S("--endpoint", both, "get", "/k"),
        S("--endpoints", dead, "get", "/k"),
        S("--endpoints", dead, "--no-sync", "get", "/k"),
        S("--endpoints", dead + "," + dead, "--no-sync", "set", "/k", "x"),
        S("--endpoints", "127.0.0.1:1", "get", "/k"),
        S("--no-sync", "get", "/k", env={"ETCDCTL_PEERS": both,
                                         "ETCDCTL_ENDPOINTS": ""}),
        S("--debug", "--no-sync", "get", "/k"),
        S("--debug", "set", "/d b", "a b&c"),
        S("--debug", "--no-sync", "mkdir", "/dd"),
        S("--timeout", "3s", "--total-timeout", "10s", "get", "/k"),
    ]
    compare(server, steps)


def H_free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def watch_run(server, tool, watch_args, writes, forever=False, glob=()):
    url = server.client_url
    H.wipe(url)
    b = H.base(url)
    H.run(tool, ["set", "/w/pre", "0"], url)
    args = list(glob) + [a.format(B=b) for a in watch_args]
    p = H.spawn(tool, args, url)
    time.sleep(1.2)  # both tools sync the member list before watching
    for w in writes:
        H.run(tool, w, url)
    if forever:
        time.sleep(0.6)
        p.send_signal(signal.SIGINT)
    try:
        out, err = p.communicate(timeout=10)
    except Exception:
        p.kill()
        out, err = p.communicate()
    return (p.returncode, H.norm(out.decode(), b), H.norm(err.decode(), b))


WATCHES = [
    (["watch", "/w/k"], [["set", "/w/k", "1"]], False),
    (["watch", "-r", "/w"], [["set", "/w/x/y", "1"]], False),
    (["watch", "--recursive", "--forever", "/w"],
     [["set", "/w/a", "1"], ["mkdir", "/w/dir"], ["rm", "/w/a"],
      ["set", "/w/b", "2"]], True),
    (["watch", "--after-index", "{B}", "/w/pre"], [], False),
    (["watch", "-f", "/w/k"], [["set", "/w/k", "1"], ["set", "/w/k", "2"],
                               ["rm", "/w/k"]], True),
    (["watch", "/w/nope"], [["rm", "/w/nope"], ["set", "/w/nope", "z"]],
     False),
]


WATCH_CASES = [(c, "simple") for c in range(len(WATCHES))] + \
    [(c, o) for c in (1, 2) for o in ("extended", "json")]


@pytest.mark.parametrize("case,output", WATCH_CASES)
def test_watch_matches_etcdctl(server, case, output):
    args, writes, forever = WATCHES[case]
    want = watch_run(server, "etcdctl", args, writes, forever,
                     glob=["-o", output])
    got = watch_run(server, "cairnctl", args, writes, forever,
                    glob=["-o", output])
    assert got == want


def test_exec_watch_matches_etcdctl(server, tmp_path):
    results = {}
    for tool in ("etcdctl", "cairnctl"):
        out = tmp_path / ("%s.txt" % tool)
        script = ("echo $ETCD_WATCH_ACTION $ETCD_WATCH_KEY "
                  "$ETCD_WATCH_VALUE $ETCD_WATCH_MODIFIED_INDEX >> %s" % out)
        url = server.client_url
        H.wipe(url)
        b = H.base(url)
        p = H.spawn(tool, ["exec-watch", "--recursive", "/ew", "--", "sh",
                           "-c", script], url)
        time.sleep(1.2)
        for i in range(3):
            H.run(tool, ["set", "/ew/k%d" % i, "v%d" % i], url)
            time.sleep(0.2)
        time.sleep(0.5)
        p.send_signal(signal.SIGINT)
        p.communicate(timeout=10)
        lines = out.read_text().splitlines() if out.exists() else []
        results[tool] = (p.returncode, sorted(
            H.norm(line.replace(" %d" % 0, " 0"), b) for line in lines))
        # indexes: relative
        results[tool] = (results[tool][0], sorted(
            " ".join(line.split()[:3] + [str(int(line.split()[3]) - b)])
            for line in lines))
    assert results["cairnctl"] == results["etcdctl"]
    assert len(results["etcdctl"][1]) == 3
