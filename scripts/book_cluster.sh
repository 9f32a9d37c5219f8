# Processes of the book build that must not outlive it; sourced by scripts/build_book.sh.
#
# start_cluster DIR BIN starts one Dask cluster for the whole build: `dask scheduler` (on a
# free port, its address in DIR/dask-scheduler.json) and `dask worker` with one
# single-threaded worker process per core (IMBCL_WORKERS overrides), OMP_WAIT_POLICY=PASSIVE
# and IMBCL_THREADS=1, logs in DIR. It exports IMBCL_SCHEDULER, so every notebook kernel's
# imbcl.sweep.run uses this cluster instead of starting its own.
#
# show_progress FILE prints the lines appended to FILE (IMBCL_PROGRESS_LOG) as they come.
#
# run_in_group CMD... runs CMD in a session (process group) of its own and waits for it, so
# that on Ctrl-C or SIGTERM the caller's trap runs at once (bash defers traps until a
# foreground command ends) and can end CMD's whole process tree (e.g. jupyter-cache's pool
# workers and their kernels).
#
# stop_all ends everything started here: SIGTERM, then SIGKILL after 30 s. build_book.sh runs
# it on exit, also on failure or Ctrl-C.

book_pids=()   # processes
book_groups=() # process groups (run_in_group)

start_cluster() {
    local dir=$1 bin=$2
    local file="$dir/dask-scheduler.json" workers=${IMBCL_WORKERS:-$(nproc)}
    rm -f "$file"
    "$bin/dask" scheduler --host 127.0.0.1 --port 0 --no-dashboard --scheduler-file "$file" \
        >"$dir/dask-scheduler.log" 2>&1 &
    book_pids+=($!)
    for _ in $(seq 600); do
        [ -s "$file" ] && break
        sleep 0.1
    done
    if [ ! -s "$file" ]; then
        echo "book: the Dask scheduler did not start within 60 s; see $dir/dask-scheduler.log" >&2
        return 1
    fi
    OMP_WAIT_POLICY=PASSIVE IMBCL_THREADS=1 "$bin/dask" worker --scheduler-file "$file" \
        --nworkers "$workers" --nthreads 1 --host 127.0.0.1 --no-dashboard --death-timeout 60 \
        >"$dir/dask-worker.log" 2>&1 &
    book_pids+=($!)
    IMBCL_SCHEDULER=$("$bin/python" -c 'import json, sys; print(json.load(open(sys.argv[1]))["address"])' "$file")
    export IMBCL_SCHEDULER
    echo "book: Dask cluster at $IMBCL_SCHEDULER, $workers single-threaded worker(s); logs in $dir"
}

show_progress() {
    : >"$1"
    tail -n +1 -F "$1" 2>/dev/null &
    book_pids+=($!)
}

run_in_group() {
    setsid "$@" &
    book_groups+=($!)
    wait $!
}

running() { # any of the given processes still running (not exited, not a zombie)
    local pid state
    for pid in "$@"; do
        state=$(ps -o stat= -p "$pid" 2>/dev/null) && [[ $state != Z* ]] && return 0
    done
    return 1
}

stop_all() {
    local pid group
    for group in "${book_groups[@]}"; do
        kill -TERM -- "-$group" 2>/dev/null || true
    done
    [ ${#book_pids[@]} -eq 0 ] || kill -TERM "${book_pids[@]}" 2>/dev/null || true
    for _ in $(seq 300); do
        running "${book_pids[@]}" "${book_groups[@]}" || break
        sleep 0.1
    done
    for group in "${book_groups[@]}"; do
        kill -KILL -- "-$group" 2>/dev/null || true
    done
    for pid in "${book_pids[@]}" "${book_groups[@]}"; do
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    book_pids=()
    book_groups=()
}
