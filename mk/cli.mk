# cairnctl stages.
#   check-cli      process tests in tests/cli: cairnctl against the real
#                  etcdctl (parity) and the recipes, with the server under
#                  test = cairn (CAIRN_BIN, default $(B)/cairn); fails, never
#                  skips, when cairn is missing.
#   check-cli-etcd the same suite against etcd (validates the tests).

TEST_STAGES += check-cli
.PHONY: check-cli check-cli-etcd

CLI_PYTEST = /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/cli

check-cli: $(B)/cairnctl
	CAIRNCTL_BIN=$(B)/cairnctl CAIRN_BIN=$${CAIRN_BIN:-$(B)/cairn} \
	    CAIRN_TEST_TARGET=cairn $(CLI_PYTEST)

check-cli-etcd: $(B)/cairnctl
	CAIRNCTL_BIN=$(B)/cairnctl CAIRN_TEST_TARGET=etcd $(CLI_PYTEST)
