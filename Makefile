# relatable: build, test, demo, sanitizers, fuzzing, install.
#
#   make            build/librelatable.a and the examples
#   make demo       build and run the demo on a fresh database file
#   make test       unit tests, demo, ThreadSanitizer and Valgrind passes, short fuzz run
#   make check      unit tests only
#   make asan       unit tests under AddressSanitizer + UBSan
#   make tsan       the tests with threads under ThreadSanitizer
#   make valgrind   unit tests under memcheck (quick mode)
#   make fuzz       every fuzz target for FUZZ_SECONDS each (default 20);
#                   FUZZ_TARGETS=fuzz_db to pick, FUZZ_SEED=N to repeat a run
#   make bench      relatable vs SQLite vs LMDB, BENCH_N rows (default 1000000),
#                   BENCH_RUNS rounds of turns (default 1; medians when more)
#   make install    PREFIX=/usr/local DESTDIR= (header, library, relatable.pc, rdump)
#
# Missing packages are installed with apt-get when run as root; otherwise
# the build stops with one line naming the package.

CC       ?= cc
OPT      ?= -O2 -g
WARN     := -std=c11 -Wall -Wextra -Wshadow -Wconversion -Wno-sign-conversion \
            -Wstrict-prototypes -Wmissing-prototypes -Wformat=2
ifeq ($(CI),true)
WARN     += -Werror
endif
CPPFLAGS += -D_GNU_SOURCE -I.
CFLAGS   += $(OPT) $(WARN)
LDLIBS   += -lpthread
BUILD    ?= build
PREFIX   ?= /usr/local
FUZZ_SECONDS ?= 20
# FUZZ_SEED=N repeats a run (libFuzzer's -seed; empty: a new seed each run)
FUZZ_SEED ?=
FUZZ_TARGETS ?= $(FUZZERS)

LIB_SRC  := relatable.c $(wildcard blocks/*.c) $(wildcard schema/*.c)
LIB_HDR  := relatable.h $(wildcard blocks/*.h) $(wildcard schema/*.h)
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
LIB      := $(BUILD)/librelatable.a
TESTS    := $(patsubst tests/%.c,$(BUILD)/tests/%,$(wildcard tests/test_*.c))
TEST_LIB := $(patsubst %.c,$(BUILD)/%.o,$(filter-out tests/test_%.c,$(wildcard tests/*.c)))
EXAMPLES := $(patsubst examples/%.c,$(BUILD)/examples/%,$(wildcard examples/*.c))
TOOLS    := $(patsubst tools/%.c,$(BUILD)/tools/%,$(wildcard tools/*.c))
RDUMP_SRC := $(wildcard tools/rdump/*.c)
FUZZERS  := $(patsubst fuzz/%.c,%,$(wildcard fuzz/fuzz_*.c))
REPLAYS  := $(patsubst %,$(BUILD)/replay/%,$(FUZZERS))

# $(call need,debian-package,shell-test)
define need
	@$(2) >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing $(1) with apt-get"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    { apt-get install -y -qq $(1) || { apt-get update -qq && apt-get install -y -qq $(1); }; } >/dev/null \
	      || { echo "error: apt-get could not install $(1)"; exit 1; }; \
	  else echo "error: missing package $(1): install it with 'apt-get install $(1)'"; exit 1; fi; }
endef

.SECONDARY:

.PHONY: all test check demo asan tsan valgrind fuzz fuzz-corpus bench install uninstall clean \
        deps-test deps-fuzz deps-tsan deps-valgrind deps-bench deps-sqlite3

all: $(LIB) $(EXAMPLES) $(TOOLS)

$(BUILD)/%.o: %.c $(LIB_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(LIB): $(LIB_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(BUILD)/examples/%: examples/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $< $(LIB) $(LDLIBS) -o $@

$(BUILD)/tools/%: tools/%.c $(wildcard tools/*/*.c tools/*/*.h) $(LIB) $(LIB_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $< $(wildcard tools/$*/*.c) $(LIB) $(LDLIBS) -o $@

$(BUILD)/tests/%: tests/%.c $(TEST_LIB) $(LIB) tests/*.h | deps-test
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $< $(TEST_LIB) $(LIB) -lcmocka $(LDLIBS) -o $@

deps-test:
	$(call need,libcmocka-dev,test -f /usr/include/cmocka.h)
deps-fuzz:
	$(call need,clang,command -v clang)
	$(call need,libclang-rt-dev,sh -c 'echo "int LLVMFuzzerTestOneInput(const char*d,unsigned long n){return 0;}" | clang -x c -fsanitize=fuzzer - -o /tmp/.rl_fuzz_probe')
deps-tsan:
	$(call need,libtsan2,sh -c 'echo "int main(void){return 0;}" | $(CC) -x c -fsanitize=thread - -o /tmp/.rl_tsan_probe')
deps-valgrind:
	$(call need,valgrind,command -v valgrind)
deps-sqlite3:
	$(call need,sqlite3,command -v sqlite3)

check: $(TESTS) $(REPLAYS) all | deps-sqlite3
	@set -e; for t in $(TESTS); do echo "== $$t"; $$t; done
	@set -e; for f in $(FUZZERS); do echo "== replay $$f"; \
	  $(BUILD)/replay/$$f fuzz/corpus/$$f tests/fuzz-regressions/$$f; done
	@echo "== tests/test_taskman.sh"; tests/test_taskman.sh $(BUILD)/examples/taskman
	@echo "== tests/test_rdump.sh"; tests/test_rdump.sh $(BUILD)/tools/rdump $(BUILD)/examples/taskman

demo: all
	@rm -f $(BUILD)/demo.rdb $(BUILD)/tasks.rdb
	$(BUILD)/examples/taskman $(BUILD)/tasks.rdb
	$(BUILD)/examples/taskman $(BUILD)/tasks.rdb project 1
	$(BUILD)/examples/taskman $(BUILD)/tasks.rdb task 1
	$(BUILD)/examples/taskman $(BUILD)/tasks.rdb search des
	$(BUILD)/examples/taskman $(BUILD)/tasks.rdb add 1 "Benchmark the commit" 1
	$(BUILD)/examples/taskman $(BUILD)/tasks.rdb status 2 done
	$(BUILD)/examples/taskman $(BUILD)/tasks.rdb
	$(BUILD)/examples/taskman $(BUILD)/tasks.rdb check
	$(BUILD)/examples/quickstart $(BUILD)/demo.rdb

asan:
	$(MAKE) BUILD=build/asan OPT="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" \
	    LDLIBS="-lpthread -fsanitize=address,undefined" check

# The tests whose threads share a handle; TSan stops at the first race.
TSAN_TESTS := test_blocks_stress test_concurrency
tsan: | deps-tsan
	$(MAKE) BUILD=build/tsan OPT="-O1 -g -fsanitize=thread" LDLIBS="-lpthread -fsanitize=thread" \
	    $(TSAN_TESTS:%=build/tsan/tests/%)
	@set -e; for t in $(TSAN_TESTS); do echo "== tsan $$t"; \
	  TSAN_OPTIONS="halt_on_error=1 exitcode=66" build/tsan/tests/$$t; done

valgrind: $(TESTS) $(REPLAYS) | deps-valgrind
	@set -e; for t in $(TESTS); do echo "== valgrind $$t"; \
	  RL_TEST_QUICK=1 valgrind -q --error-exitcode=99 --leak-check=full \
	    --errors-for-leak-kinds=definite,indirect $$t; done
	@set -e; for f in $(FUZZERS); do echo "== valgrind replay $$f"; \
	  valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect \
	    $(BUILD)/replay/$$f fuzz/corpus/$$f tests/fuzz-regressions/$$f; done

fuzz: deps-fuzz
	@set -e; for f in $(FUZZ_TARGETS); do $(MAKE) --no-print-directory build/fuzz/$$f; \
	  echo "== fuzz $$f for $(FUZZ_SECONDS)s"; mkdir -p build/fuzz/corpus-$$f; \
	  build/fuzz/$$f -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 \
	    $(if $(FUZZ_SEED),-seed=$(FUZZ_SEED)) -print_final_stats=1 -artifact_prefix=build/fuzz/$$f- \
	    build/fuzz/corpus-$$f fuzz/corpus/$$f 2>build/fuzz/$$f.log \
	    || { tail -n 60 build/fuzz/$$f.log; \
	         seed=$$(sed -n 's/^INFO: Seed: \([0-9]*\).*/\1/p' build/fuzz/$$f.log | head -n 1); \
	         echo "fuzz: $$f failed; keep its input: see tests/fuzz-regressions/README.md"; \
	         echo "fuzz: to run it again: rm -rf build/fuzz/corpus-$$f && make fuzz FUZZ_TARGETS=$$f FUZZ_SEED=$$seed FUZZ_SECONDS=$(FUZZ_SECONDS)"; \
	         exit 1; }; \
	  grep -E 'stat::number_of_executed_units' build/fuzz/$$f.log; done

build/fuzz/fuzz_%: fuzz/fuzz_%.c fuzz/memio.c fuzz/memio.h $(LIB_SRC) $(LIB_HDR) $(RDUMP_SRC)
	@mkdir -p $(dir $@)
	clang $(CPPFLAGS) -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION -std=c11 -O1 -g \
	    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	    $< fuzz/memio.c $(LIB_SRC) $(RDUMP_SRC) -lpthread -o $@

# The fuzz targets without libFuzzer (fuzz/replay.c), over a fuzzing-mode
# build of the library (checksums not enforced, as under libFuzzer).
REPLAY_LIB := $(BUILD)/replay/librelatable-fuzz.a
$(BUILD)/replay/obj/%.o: %.c $(LIB_HDR) $(wildcard tools/rdump/*.h) fuzz/memio.h
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION $(CFLAGS) -c $< -o $@
$(REPLAY_LIB): $(patsubst %.c,$(BUILD)/replay/obj/%.o,$(LIB_SRC) $(RDUMP_SRC) fuzz/memio.c)
	$(AR) rcs $@ $^
$(BUILD)/replay/fuzz_%: $(BUILD)/replay/obj/fuzz/fuzz_%.o $(BUILD)/replay/obj/fuzz/replay.o $(REPLAY_LIB)
	$(CC) $(CFLAGS) $^ $(LDLIBS) -o $@

# Regenerate the seed corpus kept in fuzz/corpus/ (made by our own code).
fuzz-corpus: $(LIB)
	@mkdir -p build/fuzz fuzz/corpus/fuzz_open fuzz/corpus/fuzz_block fuzz/corpus/fuzz_db \
	    fuzz/corpus/fuzz_rdump
	$(CC) $(CPPFLAGS) $(CFLAGS) fuzz/mkcorpus.c $(LIB) $(LDLIBS) -o build/fuzz/mkcorpus
	build/fuzz/mkcorpus fuzz/corpus/fuzz_open fuzz/corpus/fuzz_db
	for f in fuzz/corpus/fuzz_open/*; do head -c 4097 $$f > fuzz/corpus/fuzz_block/$$(basename $$f); done
	cp fuzz/corpus/fuzz_open/* fuzz/corpus/fuzz_rdump/

BENCH_N ?= 1000000
BENCH_RUNS ?= 1
deps-bench:
	$(call need,libsqlite3-dev,test -f /usr/include/sqlite3.h)
	$(call need,liblmdb-dev,test -f /usr/include/lmdb.h)

$(BUILD)/bench/bench: bench/bench.c $(LIB) | deps-bench
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -O2 -g -std=c11 -Wall -Wextra $< $(LIB) -lsqlite3 -llmdb $(LDLIBS) -o $@

# The benchmark: relatable, SQLite and LMDB on one workload (bench/bench.c).
bench: $(BUILD)/bench/bench
	$(BUILD)/bench/bench -n $(BENCH_N) -r $(BENCH_RUNS) -d $(BUILD)/bench-data

test: check demo tsan valgrind fuzz
	@echo "make test: all passed"

install: all
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/bin
	install -m 755 $(TOOLS) $(DESTDIR)$(PREFIX)/bin/
	install -m 644 relatable.h $(DESTDIR)$(PREFIX)/include/relatable.h
	install -m 644 $(LIB) $(DESTDIR)$(PREFIX)/lib/librelatable.a
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(shell sed -n 's/.*RL_VERSION_STRING "\(.*\)"/\1/p' relatable.h)|' \
	    relatable.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/relatable.pc

uninstall:
	rm -f $(patsubst $(BUILD)/tools/%,$(DESTDIR)$(PREFIX)/bin/%,$(TOOLS))
	rm -f $(DESTDIR)$(PREFIX)/include/relatable.h $(DESTDIR)$(PREFIX)/lib/librelatable.a \
	    $(DESTDIR)$(PREFIX)/lib/pkgconfig/relatable.pc

clean:
	rm -rf build
