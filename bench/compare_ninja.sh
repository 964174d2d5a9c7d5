#!/bin/bash
# Compare `bitops deploy` with ninja on the same generated DAGs (DESIGN §6 performance targets).
#
#   bench/compare_ninja.sh [a] [b] [c] [d] [check]     (no argument: all five)
#
#   a      overhead: 1 and 1000 nodes of `true`, ninja -j2 vs bitops -j 2, run alternately;
#          ratios bitops/ninja of wall and CPU time (issue 13 target: <= 1.0 for 1000 nodes)
#   b      makespan: 200 nodes of `sleep` 50-300 ms (long steps) and 200 nodes of 10-100 ms
#          (short steps); bitops at -j 1000 vs the critical path and at -j 4 vs
#          max(critical path, work/4), each run alternately with ninja on the same graph
#          (targets: long steps <= 1.03 x the bound; short steps <= 1.01 x ninja)
#   d      a real tool step: one terraform deployment (terraform_data, local state), second
#          and later runs, `bitops deploy` vs the same terraform commands run by a shell script
#          in the same folder; bitops' share = (bitops - script) / bitops (target <= 5%).
#          Needs terraform on PATH (skipped with a note otherwise)
#   c      scheduling order: one long chain + many short independent nodes at -j 2; bitops with
#          critical-path priority vs BITOPS_SCHEDULER_ORDER=fifo, against simulated schedules
#   check  correctness: every node ran once, after its deps (shared check_order.py), for ninja
#          and bitops on a 300-node DAG at -j 4
#
# Environment:
#   BITOPS_BIN     bitops binary (default: <repo>/target/release/bitops). When it does not exist,
#                  only the ninja side runs and the bitops rows say "not built".
#   BITOPS_SHARED  folder holding bench/{gen_dag,dag_to_opsrepo,time_cmd,check_order}.py
#                  (default: <repo>/../shared)
#   NINJA          ninja binary (default: the first native `ninja` on PATH, skipping Python
#                  wrappers; PEERS.md used Debian's /usr/bin/ninja 1.11.1)
#   RUNS           timed runs per row for the fast cases (default 5); SLOW_RUNS for b and c
#                  (default 3). Every row also has one untimed warm-up run.
#   TF_RUNS        alternating rounds for d (default 41): terraform's own time varies by
#                  ±10 ms around 120 ms, so fewer rounds leave an interval wider than the 5%
#                  the share is held to (the 95% interval is printed beside the figure)
#   WORK           scratch folder, recreated (default: <repo>/target/bench-ninja, i.e. the disk
#                  the checkout is on: ext4 here, as in the targets; not /tmp, which is tmpfs on
#                  many machines). The filesystem is printed; tmpfs is flagged.
#   FRESH          1: delete WORK first and generate everything again. By default the graphs
#                  and ops repos of an earlier invocation are kept (regenerated only when their
#                  arguments changed), as an ops repo is between deploys: deleting tens of
#                  thousands of files just before timing makes every file bitops then creates
#                  (a log per deployment) slow for minutes on ext4 without a journal (this
#                  machine's; the kernel's `recently_deleted` inode check), which ninja, creating
#                  none, does not pay. docs/PERFORMANCE.md gives both figures.
#
# Times are whole-process wall clock (start-up included). a, b and d run the two sides
# alternately (pair_time.py) and report the median of the per-round ratios; c uses time_cmd.py.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
SHARED=${BITOPS_SHARED:-$REPO/../shared}
SHARED=$(cd "$SHARED" && pwd)
BENCH=$SHARED/bench
BITOPS=${BITOPS_BIN:-$REPO/target/release/bitops}
# ninja: the first native binary on PATH. A `ninja` reached through a pyenv shim or a Python
# wrapper script adds ~90 ms of interpreter start-up to every invocation.
find_ninja() {
  local c
  for c in $(type -ap ninja); do
    [ "$(head -c 4 "$c" 2>/dev/null | od -An -c | tr -d ' ')" = '177ELF' ] && { echo "$c"; return; }
  done
  command -v ninja || true
}
NINJA=${NINJA:-$(find_ninja)}
RUNS=${RUNS:-5}
SLOW_RUNS=${SLOW_RUNS:-3}
TF_RUNS=${TF_RUNS:-41}
WORK=${WORK:-$REPO/target/bench-ninja}

die() { echo "compare_ninja: $*" >&2; exit 2; }
for f in gen_dag.py dag_to_opsrepo.py time_cmd.py check_order.py; do
  [ -f "$BENCH/$f" ] || die "$BENCH/$f not found (set BITOPS_SHARED to the folder that holds bench/)"
done
command -v python3 > /dev/null || die "python3 is required"
if [ -z "$NINJA" ] || [ ! -x "$(command -v "$NINJA")" ]; then
  die "ninja not found: apt-get install -y ninja-build (or pip install ninja), or set NINJA"
fi

HAVE_BITOPS=1
if [ ! -x "$BITOPS" ]; then
  HAVE_BITOPS=0
  echo "note: $BITOPS does not exist (cargo build --release); running the ninja side only" >&2
fi

PARTS=("$@")
[ ${#PARTS[@]} -eq 0 ] && PARTS=(a b c d check)
for p in "${PARTS[@]}"; do
  case "$p" in a|b|c|d|check) ;; *) die "unknown part '$p' (expected a, b, c, d or check)" ;; esac
done
want() { local p; for p in "${PARTS[@]}"; do [ "$p" = "$1" ] && return 0; done; return 1; }

if [ "${FRESH:-0}" = 1 ]; then rm -rf "$WORK"; else rm -rf "$WORK/logs"; fi
mkdir -p "$WORK/logs"
export LC_ALL=C

NINJA_VERSION=$("$NINJA" --version)
BITOPS_VERSION="not built"
[ $HAVE_BITOPS = 1 ] && BITOPS_VERSION=$("$BITOPS" --version 2>/dev/null | head -1 || echo "unknown")
echo "# bitops vs ninja   $(date -u +%Y-%m-%dT%H:%M:%SZ)   $(nproc) CPUs   $(uname -sr)"
echo "# ninja: $NINJA ($NINJA_VERSION)   bitops: $BITOPS ($BITOPS_VERSION)"
# The filesystem decides the per-deployment file cost (DESIGN §6 targets are on ext4): say which.
FSTYPE=$(df -T "$WORK" 2>/dev/null | awk 'NR==2 {print $2}')
echo "# scratch: $WORK (${FSTYPE:-unknown filesystem})"
[ "$FSTYPE" = tmpfs ] && echo "# NOTE: tmpfs makes creating files almost free; the targets are for ext4 (set WORK)"
echo

# ---------------------------------------------------------------------------------------------
# helpers

# gen NAME GEN_DAG_ARGS... : DAG in $WORK/NAME (dag.json, stats.json), its ops repo in
# $WORK/NAME/repo and the matching build.ninja in $WORK/NAME/ninja (kept out of the ops repo,
# so ninja's .ninja_log does not land in it; the file only uses absolute paths).
# A graph generated by an earlier invocation with the same arguments is kept, with its ops
# repo's state (runs, working copies): see FRESH above.
gen() {
  local name=$1; shift
  local stamp="$WORK/$name/.gen-args"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$*" ] && [ -d "$WORK/$name/repo" ]; then
    return
  fi
  [ -e "$WORK/$name" ] && echo "note: $name regenerated (its arguments changed): files were just deleted, see FRESH"
  rm -rf "${WORK:?}/$name"
  python3 "$BENCH/gen_dag.py" "$@" --formats json --out "$WORK/$name" > /dev/null
  gen_repo "$name"
  echo "$*" > "$stamp"
}
gen_repo() {
  local name=$1
  python3 "$BENCH/dag_to_opsrepo.py" "$WORK/$name/dag.json" "$WORK/$name/repo" > /dev/null
  mkdir -p "$WORK/$name/ninja"
  mv "$WORK/$name/repo/build.ninja" "$WORK/$name/ninja/build.ninja"
}

# timeit LABEL RUNS CMD... : sets T_WALL, T_CPU (median seconds) and T_FAILED
timeit() {
  local label=$1 runs=$2; shift 2
  local line
  line=$(python3 "$BENCH/time_cmd.py" -r "$runs" -w 1 --label "$label" \
           --log "$WORK/logs/$(echo "$label" | tr -c 'A-Za-z0-9.=-' '_').log" -- "$@" || true)
  echo "$line" >> "$WORK/logs/time_cmd.txt"
  T_FAILED=$(sed -n 's/.*failed=\([0-9]*\).*/\1/p' <<< "$line")
  T_WALL=$(sed -n 's/.*wall s min\/med\/max [0-9.]* \([0-9.]*\) .*/\1/p' <<< "$line")
  T_CPU=$(sed -n 's/.*cpu s [0-9.]* \([0-9.]*\) .*/\1/p' <<< "$line")
  [ -n "$T_WALL" ] || { echo "could not time: $*" >&2; T_FAILED=${runs}; T_WALL=nan; T_CPU=nan; }
}

# pair LABEL RUNS REF_CMD... --- CAND_CMD... : both commands alternately (pair_time.py); sets
# P_WALL (median per-round wall ratio cand/ref), P_CPU, P_REF_WALL, P_CAND_WALL, P_REF_CPU,
# P_CAND_CPU, P_FAILED
pair() {
  local label=$1 runs=$2; shift 2
  local line
  line=$(python3 "$HERE/pair_time.py" -r "$runs" --ref-label "$label ref" --cand-label "$label cand" \
           --log "$WORK/logs/$(echo "$label" | tr -c 'A-Za-z0-9.=-' '_').log" -- "$@" || true)
  echo "$line" >> "$WORK/logs/pair_time.txt"
  line=$(tail -1 <<< "$line")
  field() { sed -n "s/.*\b$1=\([0-9.naninf-]*\).*/\1/p" <<< "$line"; }
  P_WALL=$(field wall); P_CPU=$(field cpu); P_FAILED=$(field failed)
  P_REF_WALL=$(field ref_wall); P_CAND_WALL=$(field cand_wall)
  P_REF_CPU=$(field ref_cpu); P_CAND_CPU=$(field cand_cpu)
  P_WALL_LO=$(field wall_lo); P_WALL_HI=$(field wall_hi)
  P_CPU_LO=$(field cpu_lo); P_CPU_HI=$(field cpu_hi)
  [ -n "$P_WALL" ] || { echo "could not time: $*" >&2; P_WALL=nan; P_CPU=nan; P_FAILED=$runs
    P_WALL_LO=nan; P_WALL_HI=nan; P_CPU_LO=nan; P_CPU_HI=nan
    P_REF_WALL=nan; P_CAND_WALL=nan; P_REF_CPU=nan; P_CAND_CPU=nan; }
}
# pair_dag NAME NINJA_JOBS BITOPS_JOBS RUNS: ninja vs bitops on one generated DAG
pair_dag() {
  if [ $HAVE_BITOPS = 0 ]; then
    timeit "$1 ninja -j$2" "$4" "$NINJA" -C "$WORK/$1/ninja" --quiet "-j$2"
    P_REF_WALL=$T_WALL; P_REF_CPU=$T_CPU; P_CAND_WALL=nan; P_CAND_CPU=nan; P_WALL=nan; P_CPU=nan
    P_FAILED=-; return
  fi
  pair "$1 ninja -j$2 / bitops -j $3" "$4" "$NINJA" -C "$WORK/$1/ninja" --quiet "-j$2" --- \
    "$BITOPS" deploy -C "$WORK/$1/repo" -j "$3" --progress none
}
pstatus() {
  if [ "$P_FAILED" = "-" ]; then echo "bitops not built"; elif [ "$P_FAILED" != 0 ]; then echo "FAILED $P_FAILED runs, see $WORK/logs"; fi
}

run_ninja() { # NAME JOBS RUNS
  timeit "$1 ninja -j$2" "$3" "$NINJA" -C "$WORK/$1/ninja" --quiet "-j$2"
}
run_bitops() { # NAME JOBS RUNS [ENV=VALUE...]
  local name=$1 jobs=$2 runs=$3; shift 3
  if [ $HAVE_BITOPS = 0 ]; then T_WALL=nan; T_CPU=nan; T_FAILED=-; return; fi
  timeit "$name bitops -j$jobs${1:+ $*}" "$runs" \
    env "$@" "$BITOPS" deploy -C "$WORK/$name/repo" -j "$jobs" --progress none
}

# calc EXPR [DECIMALS]: arithmetic on timings; a missing timing is "nan" and stays "nan"
calc() { python3 -c "nan=float('nan'); x=($1); print('nan' if x != x else '%.${2:-3}f' % x)"; }
jstat() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))$2)" "$WORK/$1/stats.json"; }

row() { printf '| %-34s | %-24s | %9s | %8s | %s\n' "$@"; }
status() { # after a timing: "" when fine, otherwise a note
  if [ "$T_FAILED" = "-" ]; then echo "not built"; elif [ "$T_FAILED" != 0 ]; then echo "FAILED $T_FAILED runs, see $WORK/logs"; fi
}

# ---------------------------------------------------------------------------------------------
if want a; then
  echo "## (a) overhead: 'true' actions, layered random DAG (seed 1), -j 2, run alternately"
  echo
  gen t1 -n 1 --layers 1 --seed 1 --action true
  gen t1000 -n 1000 --layers 20 --seed 1 --action true
  row "case" "ninja wall s (cpu s)" "bitops wall s (cpu s)" "wall ratio" "cpu ratio (target for t1000: both <= 1.0)"
  row "---" "---:" "---:" "---:" "---:"
  for name in t1 t1000; do
    pair_dag $name 2 2 "$RUNS"
    row "$name" "$P_REF_WALL ($P_REF_CPU)" "$P_CAND_WALL ($P_CAND_CPU)" "$P_WALL" "$P_CPU $(pstatus)"
    [ $name = t1 ] && { W1N=$P_REF_WALL; W1B=$P_CAND_WALL; }
  done
  echo
  echo "per node, (wall(1000) - wall(1)) / 999:  ninja $(calc "($P_REF_WALL - $W1N)/999*1000" 2) ms" \
       "  bitops $(calc "($P_CAND_WALL - $W1B)/999*1000" 2) ms"
  echo "(every node runs the same deploy script through bash in both runners; ratios are medians of"
  echo " per-round ratios, the two runners alternating; PEERS.md: ninja ~0.6 ms, make ~0.47 ms per node)"
  echo
fi

# ---------------------------------------------------------------------------------------------
if want b; then
  makespan() { # NAME TITLE GEN_ARGS... : both job limits, bitops beside ninja
    local name=$1 title=$2; shift 2
    echo "### $title"
    echo
    gen "$name" -n 200 --layers 10 --seed 1 --action sleep "$@" --jobs 4,0
    local cp work lb4 sim4
    cp=$(calc "$(jstat "$name" "['critical_path_ms']")/1000")
    work=$(calc "$(jstat "$name" "['total_work_ms']")/1000")
    lb4=$(calc "$(jstat "$name" "['bounds']['4']['lower_bound_ms']")/1000")
    sim4=$(calc "$(jstat "$name" "['bounds']['4']['sim_critical_path_first_ms']")/1000")
    echo "critical path $cp s, total work $work s, bound at -j4 max(CP, W/4) = $lb4 s" \
         "(zero-overhead critical-path-first schedule: $sim4 s)"
    echo
    row "jobs" "ninja wall s (/ bound)" "bitops wall s (/ bound)" "bitops / ninja" "bound s"
    row "---" "---:" "---:" "---:" "---:"
    pair_dag "$name" 0 1000 "$SLOW_RUNS"
    row "unlimited (-j0 / -j 1000)" "$P_REF_WALL ($(calc "$P_REF_WALL/$cp"))" \
        "$P_CAND_WALL ($(calc "$P_CAND_WALL/$cp"))" "$P_WALL" "$cp $(pstatus)"
    pair_dag "$name" 4 4 "$SLOW_RUNS"
    row "-j4" "$P_REF_WALL ($(calc "$P_REF_WALL/$lb4"))" \
        "$P_CAND_WALL ($(calc "$P_CAND_WALL/$lb4"))" "$P_WALL" "$lb4 $(pstatus)"
    echo
  }
  echo "## (b) makespan: 200 nodes, 10 layers (seed 1), both runners alternately"
  echo
  makespan s200 "long steps, sleep 50-300 ms (target: bitops <= 1.03 x the bound)" --cost-min 50 --cost-max 300
  makespan q200 "short steps, sleep 10-100 ms (target: bitops <= 1.01 x ninja)" --cost-min 10 --cost-max 100
fi

# ---------------------------------------------------------------------------------------------
if want c; then
  echo "## (c) critical-path priority vs FIFO: a 10 x 200 ms chain + 40 x 100 ms independent nodes, -j 2"
  echo
  # The 40 short nodes come first in declaration (and name) order, so a FIFO ready queue runs
  # them before the chain head; a critical-path-first scheduler starts the chain at once.
  # Every node appends its id to a log when it starts, to see the order afterwards.
  rm -rf "$WORK/prio"; mkdir -p "$WORK/prio"
  python3 - "$WORK/prio/dag.json" "$WORK/prio/stats.json" "$WORK/prio/start.log" "$BENCH" <<'EOF'
import json, sys
sys.path.insert(0, sys.argv[4])
import gen_dag
log = sys.argv[3]
nodes = []
for i in range(40):
    nodes.append({"id": "n%05d" % i, "deps": [], "cost_ms": 100})
for k in range(10):
    i = 40 + k
    nodes.append({"id": "n%05d" % i, "deps": ["n%05d" % (i - 1)] if k else [], "cost_ms": 200})
for n in nodes:
    n["cmd"] = "echo %s >> %s && sleep %.3f" % (n["id"], log, n["cost_ms"] / 1000.0)
index = {n["id"]: i for i, n in enumerate(nodes)}
deps = [[index[d] for d in n["deps"]] for n in nodes]
cost = [n["cost_ms"] for n in nodes]
cp, blevel, children = gen_dag.critical_path(deps, cost)
work = sum(cost)
stats = {"critical_path_ms": cp, "total_work_ms": work, "lower_bound_ms": max(cp, -(-work // 2)),
         "sim_id_order_ms": gen_dag.list_schedule(deps, children, cost, 2, list(range(len(nodes)))),
         "sim_critical_path_first_ms": gen_dag.list_schedule(
             deps, children, cost, 2, [(-blevel[v], v) for v in range(len(nodes))])}
json.dump({"meta": {"nodes": len(nodes)}, "nodes": nodes}, open(sys.argv[1], "w"), indent=1)
json.dump(stats, open(sys.argv[2], "w"), indent=1)
EOF
  gen_repo prio
  lb=$(calc "$(jstat prio "['lower_bound_ms']")/1000")
  sfifo=$(calc "$(jstat prio "['sim_id_order_ms']")/1000")
  scp=$(calc "$(jstat prio "['sim_critical_path_first_ms']")/1000")
  echo "bound max(CP, W/2) = $lb s; zero-overhead schedules: FIFO (declaration order) $sfifo s," \
       "critical-path-first $scp s"
  echo
  # where the chain head (n00040) started among the 50 nodes, in the last timed run
  chain_pos() { grep -n -x n00040 "$WORK/prio/start.log" | tail -1 | cut -d: -f1 | python3 -c \
    "import sys; n=sys.stdin.read().strip(); print('#%d of 50' % ((int(n)-1) % 50 + 1) if n else '-')"; }
  row "runner" "order" "wall s" "sim s" "ratio to sim / chain head started"
  row "---" "---" "---:" "---:" "---"
  : > "$WORK/prio/start.log"
  run_ninja prio 2 "$SLOW_RUNS"
  row "ninja -j2" "ninja's own" "$T_WALL" "$scp" "$(calc "$T_WALL/$scp") / $(chain_pos) $(status)"
  python3 "$BENCH/check_order.py" "$WORK/prio/dag.json" <(tail -50 "$WORK/prio/start.log") > /dev/null ||
    echo "  ninja: start order check FAILED"
  for order in cp fifo; do
    : > "$WORK/prio/start.log"
    if [ $order = cp ]; then
      run_bitops prio 2 "$SLOW_RUNS"; sim=$scp; label="critical path (default)"; W_cp=$T_WALL
    else
      run_bitops prio 2 "$SLOW_RUNS" BITOPS_SCHEDULER_ORDER=fifo; sim=$sfifo
      label="BITOPS_SCHEDULER_ORDER=fifo"; W_fifo=$T_WALL
    fi
    row "bitops deploy -j 2" "$label" "$T_WALL" "$sim" "$(calc "$T_WALL/$sim") / $(chain_pos) $(status)"
    if [ $HAVE_BITOPS = 1 ] && [ -s "$WORK/prio/start.log" ]; then
      python3 "$BENCH/check_order.py" "$WORK/prio/dag.json" <(tail -50 "$WORK/prio/start.log") > /dev/null ||
        echo "  bitops ($order): start order check FAILED (deps must start after their deps)"
    fi
  done
  echo
  echo "critical-path order vs FIFO: $(calc "${W_cp}/${W_fifo}" 3) x the FIFO makespan" \
       "(simulated: $(calc "$scp/$sfifo" 3))"
  echo
fi

# ---------------------------------------------------------------------------------------------
if want d; then
  echo "## (d) a real tool step: terraform init + plan + apply + output of an unchanged terraform_data deployment"
  echo
  if ! command -v terraform > /dev/null; then
    echo "skipped: terraform is not on PATH"
    echo
  elif [ $HAVE_BITOPS = 0 ]; then
    echo "skipped: bitops not built"
    echo
  else
    TF=$WORK/tf
    mkdir -p "$TF/repo/e/terraform"
    printf 'bitops:\n  deployments:\n    terraform:\n      plugin: terraform\n' > "$TF/repo/e/bitops.config.yaml"
    printf 'terraform:\n  cli:\n    stack-action: apply\n' > "$TF/repo/e/terraform/bitops.config.yaml"
    printf 'resource "terraform_data" "x" {\n  input = "v1"\n}\noutput "x" {\n  value = terraform_data.x.output\n}\n' \
      > "$TF/repo/e/terraform/main.tf"
    # The first run initialises the working copy and creates the resource; the runs timed below
    # find it unchanged. The script replays the commands bitops' log shows, in the same folder.
    "$BITOPS" deploy -C "$TF/repo" -e e --progress none > "$WORK/logs/tf-first.log" 2>&1 ||
      { echo "bitops deploy failed, see $WORK/logs/tf-first.log"; exit 1; }
    log=$(ls -d "$TF"/repo/.bitops/runs/*/ | tail -1)logs/e__terraform.log
    {
      echo '#!/bin/bash'
      echo 'set -e'
      # What bitops hands terraform off a terminal (src/exec/plain_output.rs), so that both
      # sides run terraform alike (measured: no difference in its time, 41 rounds).
      echo 'export NO_COLOR=1 CLICOLOR=0 ANSIBLE_NOCOLOR=1 TF_IN_AUTOMATION=1'
      for c in init validate plan apply destroy output show refresh import; do
        echo "export TF_CLI_ARGS_$c=-no-color"
      done
      echo "cd '$TF/repo/.bitops/work/e/terraform'"
      sed -n 's/^\$ //p' "$log" | sed "s#/[^ ]*\.tfplan#$TF/direct.tfplan#g"
    } > "$TF/direct.sh"
    chmod +x "$TF/direct.sh"
    echo "commands (from bitops' log, replayed by $TF/direct.sh):"
    sed -n 's/^terraform /  terraform /p' "$TF/direct.sh"
    echo
    pair "terraform script / bitops" "$TF_RUNS" "$TF/direct.sh" --- \
      "$BITOPS" deploy -C "$TF/repo" -e e --progress none
    row "runner" "wall s" "cpu s" "" ""
    row "---" "---:" "---:" "" ""
    row "the commands, by a script" "$P_REF_WALL" "$P_REF_CPU" "" ""
    row "bitops deploy -e e" "$P_CAND_WALL" "$P_CAND_CPU" "" "$(pstatus)"
    echo
    share() { calc "(1 - 1/$1)*100" 1; }
    echo "bitops' share of the step: 1 - 1/ratio = wall $(share "$P_WALL")%" \
         "(95% interval $(share "$P_WALL_LO")..$(share "$P_WALL_HI")%)," \
         "cpu $(share "$P_CPU")% ($(share "$P_CPU_LO")..$(share "$P_CPU_HI")%) (target <= 5%," \
         "$TF_RUNS rounds)"
    echo
    # The same two runners with a stand-in `terraform` that exits at once (printing `{}` for
    # `output -json`): what is left is what each runner costs around the four commands, without
    # terraform's own ±10 ms. bitops' fixed cost is the difference; its share of the real step
    # is that cost over the script's real step plus it.
    REAL_WALL=$P_REF_WALL; REAL_CPU=$P_REF_CPU
    mkdir -p "$TF/stub"
    printf '#include <string.h>\n#include <stdio.h>\nint main(int c, char **v) { if (c > 1 && !strcmp(v[1], "output")) puts("{}"); return 0; }\n' \
      > "$TF/stub/terraform.c"
    if command -v cc > /dev/null && cc -O2 -o "$TF/stub/terraform" "$TF/stub/terraform.c" 2> /dev/null; then
      stub="a C stand-in"
    else
      printf '#!/bin/sh\n[ "$1" = output ] && echo "{}"\nexit 0\n' > "$TF/stub/terraform"
      chmod +x "$TF/stub/terraform"
      stub="a shell stand-in (no C compiler: each of its four runs costs a shell start, on both sides)"
    fi
    pair "stand-in script / bitops" "$TF_RUNS" env "PATH=$TF/stub:$PATH" "$TF/direct.sh" --- \
      env "PATH=$TF/stub:$PATH" "$BITOPS" deploy -C "$TF/repo" -e e --progress none
    fixed_wall=$(calc "($P_CAND_WALL - $P_REF_WALL)*1000" 1)
    fixed_cpu=$(calc "($P_CAND_CPU - $P_REF_CPU)*1000" 1)
    echo "with $stub: script $(calc "$P_REF_WALL*1000" 1) ms wall / $(calc "$P_REF_CPU*1000" 1) ms cpu," \
         "bitops $(calc "$P_CAND_WALL*1000" 1) / $(calc "$P_CAND_CPU*1000" 1) ms $(pstatus)"
    echo "bitops' fixed cost: ${fixed_wall} ms wall, ${fixed_cpu} ms cpu; its share of the real step:" \
         "wall $(calc "100*($fixed_wall/1000)/($REAL_WALL + $fixed_wall/1000)" 1)%," \
         "cpu $(calc "100*($fixed_cpu/1000)/($REAL_CPU + $fixed_cpu/1000)" 1)% (target <= 5%)"
    echo
  fi
fi

if want check; then
  echo "## correctness: 300 nodes, every node once and after all its deps (check_order.py), -j 4"
  echo
  gen order300 -n 300 --layers 15 --seed 2 --action "echo {id} >> $WORK/order300/LOG"
  # gen_dag writes into the folder it recreates: the log path must exist before the runs
  for runner in ninja bitops; do
    : > "$WORK/order300/LOG"
    if [ $runner = ninja ]; then
      "$NINJA" -C "$WORK/order300/ninja" --quiet -j4 > "$WORK/logs/order300-ninja.log" 2>&1 || true
    elif [ $HAVE_BITOPS = 1 ]; then
      "$BITOPS" deploy -C "$WORK/order300/repo" -j 4 --progress none > "$WORK/logs/order300-bitops.log" 2>&1 ||
        echo "  bitops exited non-zero, see $WORK/logs/order300-bitops.log"
    else
      echo "  bitops: not built"; continue
    fi
    echo "  $runner: $(python3 "$BENCH/check_order.py" "$WORK/order300/dag.json" "$WORK/order300/LOG" || true)"
  done
  echo
fi

# ---------------------------------------------------------------------------------------------
cat <<EOF
## reproduce

  BITOPS_SHARED=$SHARED NINJA=$NINJA RUNS=$RUNS SLOW_RUNS=$SLOW_RUNS TF_RUNS=$TF_RUNS \\
    $HERE/compare_ninja.sh ${PARTS[*]}

by hand, for one DAG:
  python3 $BENCH/gen_dag.py -n 1000 --layers 20 --seed 1 --action true --formats json --out /tmp/t1000
  python3 $BENCH/dag_to_opsrepo.py /tmp/t1000/dag.json /tmp/t1000/repo
  python3 $BENCH/time_cmd.py -r 5 -w 1 -- $NINJA -C /tmp/t1000/repo --quiet -j2
  python3 $BENCH/time_cmd.py -r 5 -w 1 -- $BITOPS deploy -C /tmp/t1000/repo -j 2 --progress none

generated DAGs, ops repos, stats.json and logs: $WORK   (time_cmd lines: $WORK/logs/time_cmd.txt)
EOF
