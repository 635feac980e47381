#!/usr/bin/env bash
# Checks the module dependency table of STYLE.md section 8: which module's
# headers each module may include, and that every public header compiles
# alone.
set -u
cd "$(dirname "$0")/.."

allowed() {
  case "$1" in
    base) echo "base" ;;
    wal|raft|store|config) echo "base $1" ;;
    server) echo "base wal raft store config server" ;;
    http) echo "base wal raft store config server http" ;;
    cli) echo "base wal cli" ;;
    fleet) echo "base wal cli fleet" ;;
    cmd) echo "base wal raft store config server http cli fleet cmd" ;;
    *) echo "" ;;
  esac
}

bad=0
for dir in src/*/; do
  mod=$(basename "$dir")
  ok=$(allowed "$mod")
  for f in "$dir"*.[ch]; do
    [ -e "$f" ] || continue
    while IFS= read -r inc; do
      target=${inc%%/*}
      if [ "$target" = "$inc" ]; then
        continue  # same-directory include
      fi
      case " $ok " in
        *" $target "*) ;;
        *) echo "includes: $f includes \"$inc\": $mod may not use $target"; bad=1 ;;
      esac
    done < <(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$f")
  done
done

cc=${CC:-cc}
flags="-std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Isrc $(pkg-config --cflags libuv jansson 2>/dev/null)"
for h in src/*/*.h; do
  case "$h" in *_int.h) continue ;; esac
  if ! echo "#include \"$h\"" | $cc $flags -I. -x c -fsyntax-only - 2>/tmp/cairn-inc.$$; then
    echo "includes: $h does not compile alone:"; cat /tmp/cairn-inc.$$; bad=1
  fi
done
rm -f /tmp/cairn-inc.$$
if [ $bad -eq 0 ]; then echo "includes: ok"; fi
exit $bad
