# Sanitizer and Valgrind stages of `make test`.
#   check-unit-asan      unit tests built with ASan+UBSan (build-asan/)
#   check-unit-valgrind  unit tests under valgrind memcheck (build/)

TEST_STAGES += check-unit-asan check-unit-valgrind
ASAN_B ?= build-asan

.PHONY: check-unit-asan check-unit-valgrind

check-unit-asan:
	@$(MAKE) --no-print-directory SAN=1 B=$(ASAN_B) unit-tests
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    prove -f $(patsubst $(B)/%,$(ASAN_B)/%,$(UNIT_TESTS))

# Valgrind is slow: unit tests that opt out (fault loops that take minutes
# under memcheck) list their basename in VALGRIND_SKIP with a reason.
VALGRIND_SKIP ?=
VALGRIND = valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite
VALGRIND_TESTS = $(filter-out $(addprefix %/,$(VALGRIND_SKIP)),$(UNIT_TESTS))
check-unit-valgrind: unit-tests
	prove -f --exec '$(VALGRIND)' $(VALGRIND_TESTS)
