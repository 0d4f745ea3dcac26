# Sourced by the benchmark scripts: where a run's results go and the header of that file.
#   . infra/bench/result.sh NAME "$@"   (from the repository root, in the script)
# Sets CMDLINE (the command as run), STAMP (UTC, the run's start) and RESULT
# (docs/benchmarks/<STAMP>-NAME.md, a new file every run; never README.md), and defines
# `header TITLE`, which prints the file's title, command and host.
BENCH_NAME=$1
shift
CMDLINE="bash infra/bench-$BENCH_NAME.sh${*:+ $*}"
STAMP=$(date -u +%Y-%m-%d-%H%M)
RESULT=docs/benchmarks/$STAMP-$BENCH_NAME.md
[ -e "$RESULT" ] && RESULT=docs/benchmarks/$STAMP$(date -u +%S)-$BENCH_NAME.md
mkdir -p docs/benchmarks
header() { # the result file's title, command and host: header TITLE
  printf '# %s, %s %s:%s UTC\n\n## Command\n\n```bash\n%s\n```\n\n## Host\n\n' "$1" \
    "${STAMP:0:10}" "${STAMP:11:2}" "${STAMP:13:2}" "$CMDLINE"
  local commit
  if commit=$(git rev-parse --short HEAD 2>/dev/null); then
    git diff --quiet HEAD || commit="$commit, with uncommitted changes"
  else commit=unknown; fi
  echo "- commit: $commit"
  echo "- CPU: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), $(nproc) logical CPUs; memory $(awk '/^MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo); $(uname -sr)"
  printf '\n## Results\n\n'
}
