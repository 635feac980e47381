# libFuzzer target for the HTTP request path (parser, routing, handlers,
# server pipeline, store), built with clang into build-fuzz/.
#   check-fuzz       ~30 s from the seed corpus (make test)
#   check-fuzz-long  10 minutes (make test-long)
# New inputs go to $(FUZZ_B)/corpus; tests/fuzz/corpus holds the seeds.

TEST_STAGES += check-fuzz
TEST_LONG_STAGES += check-fuzz-long
FUZZ_B ?= build-fuzz
FUZZ_CC ?= clang
FUZZ_FLAGS = -g -O1 -fsanitize=fuzzer,address,undefined \
             -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_MODS = http server store config raft wal base
FUZZ_SRCS = tests/fuzz/fuzz_http.c \
            $(foreach m,$(FUZZ_MODS),$(wildcard src/$(m)/*.c))
FUZZ_ARGS = -max_len=4096 -dict=tests/fuzz/http.dict -print_final_stats=1

.PHONY: check-fuzz check-fuzz-long

$(FUZZ_B)/fuzz_http: $(FUZZ_SRCS) $(wildcard src/*/*.h)
	@mkdir -p $(FUZZ_B)
	$(FUZZ_CC) -std=c11 -D_GNU_SOURCE $(WARN) $(FUZZ_FLAGS) -Isrc -Itests/lib \
	    $(PKG_CFLAGS) $(FUZZ_SRCS) $(PKG_LIBS) -lm -lpthread -o $@

check-fuzz: $(FUZZ_B)/fuzz_http
	@mkdir -p $(FUZZ_B)/corpus
	$(FUZZ_B)/fuzz_http $(FUZZ_ARGS) -max_total_time=30 \
	    $(FUZZ_B)/corpus tests/fuzz/corpus

check-fuzz-long: $(FUZZ_B)/fuzz_http
	@mkdir -p $(FUZZ_B)/corpus
	$(FUZZ_B)/fuzz_http $(FUZZ_ARGS) -max_total_time=600 \
	    $(FUZZ_B)/corpus tests/fuzz/corpus
