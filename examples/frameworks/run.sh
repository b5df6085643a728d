#!/usr/bin/env bash
# Runs each framework example against `stripe-sessions fake-server` on 127.0.0.1, drives
# it with curl, stops it as a terminal's Ctrl-C does (SIGINT to its process group) and
# prints what its log says. Usage: examples/frameworks/run.sh [fastapi|django-asgi|...]
# Needs the frameworks in the environment (pip install fastapi uvicorn django flask
# gunicorn gevent nbclient ipykernel celery).
set -u
cd "$(dirname "$0")"
PY=${PYTHON:-python}
LOGS=${LOGS:-$(mktemp -d)}
mkdir -p "$LOGS"
FAKE_PORT=${FAKE_PORT:-12730}
APP_PORT=${APP_PORT:-8730}
CUS=cus_NffrFeUfNV2Hib
export STRIPE_API_KEY=sk_test_example STRIPE_BASE_URL=http://127.0.0.1:$FAKE_PORT
# -X dev: asyncio's debug mode and every ResourceWarning (an unclosed session shows).
DEV=(-X dev -W error::ResourceWarning)

# start NAME DIR CMD...: in a process group of its own, SIGINT as in a terminal.
start() {
    local name=$1 dir=$2; shift 2
    (cd "$dir" && exec "$PY" -c 'import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL); os.setsid(); os.execvp(sys.argv[1], sys.argv[1:])' \
        "$@" >"$LOGS/$name.log" 2>&1) &
    echo $! >"$LOGS/$name.pid"
}
# ctrlc NAME: SIGINT to the group; report how long it took, or what is still running.
ctrlc() {
    local pid; pid=$(cat "$LOGS/$1.pid")
    kill -INT -- "-$pid" 2>/dev/null
    for i in $(seq 20); do
        sleep 0.5
        pgrep -g "$pid" >/dev/null || { echo "  Ctrl-C: every process ended within $((i * 5 / 10)).$((i * 5 % 10)) s"; return; }
    done
    echo "  Ctrl-C: STILL RUNNING after 10 s:"; pgrep -ag "$pid"; kill -TERM -- "-$pid"
}
wait_up() { for _ in $(seq 60); do curl -s -o /dev/null "$1" && return 0; sleep 0.5; done; echo "  never came up"; }
post() { curl -s -o /dev/null -w "%{http_code} " -X "${2:-POST}" "$1"; }
fault() { curl -s -o /dev/null -X POST "127.0.0.1:$FAKE_PORT/_fake/faults" -d "$1"; }
report() {  # what the log has beyond the servers' own chatter
    echo "  log ($LOGS/$1.log), less access lines and asyncio debug-mode timings:"
    grep -av -e '" 200' -e 'HTTP/1.1" 200' -e '^Executing <' -e 'INFO' "$LOGS/$1.log" | sed 's/^/    /' | head -30
}
# concurrent N URL: N requests at once, each answered 1 s late by the fake; wall time.
concurrent() {
    fault "{\"kind\": \"slow\", \"seconds\": 1, \"count\": $1}"
    local t0; t0=$(date +%s.%N)
    seq "$1" | xargs -P "$1" -I{} curl -s -o /dev/null -w "%{http_code}\n" -X "${3:-POST}" "$2" | sort | uniq -c | tr '\n' ' '
    echo "in $(echo "$(date +%s.%N) - $t0" | bc) s ($1 at once, each 1 s at the fake)"
}
# inflight URL NAME: Ctrl-C while a request waits 3 s at the fake; what did it get?
inflight() {
    fault '{"kind": "slow", "seconds": 3}'
    curl -s -o "$LOGS/inflight.out" -w "%{http_code}" -X "${3:-POST}" "$1" >"$LOGS/inflight.code" &
    local curl_pid=$!; sleep 1; ctrlc "$2"; wait $curl_pid
    echo "  the request in flight at Ctrl-C got: $(cat "$LOGS/inflight.code") $(head -c 60 "$LOGS/inflight.out")"
}

fastapi() {
    echo "== FastAPI (lifespan), uvicorn"
    start fastapi fastapi "$PY" "${DEV[@]}" -m uvicorn app:app --port "$APP_PORT"
    wait_up "127.0.0.1:$APP_PORT/docs"
    echo "  $(post "127.0.0.1:$APP_PORT/pricing-session?customer=$CUS") $(post "127.0.0.1:$APP_PORT/pricing-session?customer=nope")(a bad customer: 400 from the handler)"
    echo "  $(concurrent 20 "127.0.0.1:$APP_PORT/pricing-session?customer=$CUS")"
    inflight "127.0.0.1:$APP_PORT/pricing-session?customer=$CUS" fastapi; report fastapi
}
django_asgi() {
    echo "== Django ASGI (async and sync views, import-time clients), uvicorn"
    start django-asgi django "$PY" "${DEV[@]}" -m uvicorn asgi:application --port "$APP_PORT"
    wait_up "127.0.0.1:$APP_PORT/"
    echo "  async view $(post "127.0.0.1:$APP_PORT/async?customer=$CUS" GET) sync view $(post "127.0.0.1:$APP_PORT/sync?customer=$CUS" GET)"
    echo "  $(concurrent 20 "127.0.0.1:$APP_PORT/async?customer=$CUS" GET)"
    inflight "127.0.0.1:$APP_PORT/async?customer=$CUS" django-asgi GET; report django-asgi
}
django_wsgi() {
    echo "== Django WSGI: gunicorn sync workers, then the dev server (runserver, autoreload)"
    start django-wsgi django "$PY" "${DEV[@]}" -m gunicorn -k sync -w 2 -b "127.0.0.1:$APP_PORT" wsgi:application
    wait_up "127.0.0.1:$APP_PORT/"
    echo "  sync view $(post "127.0.0.1:$APP_PORT/sync?customer=$CUS" GET) async view $(post "127.0.0.1:$APP_PORT/async?customer=$CUS" GET)"
    inflight "127.0.0.1:$APP_PORT/sync?customer=$CUS" django-wsgi GET; report django-wsgi
    start django-runserver django "$PY" "${DEV[@]}" -m django runserver "127.0.0.1:$APP_PORT" --settings=project --pythonpath=.
    wait_up "127.0.0.1:$APP_PORT/"
    echo "  sync view $(post "127.0.0.1:$APP_PORT/sync?customer=$CUS" GET) async view $(post "127.0.0.1:$APP_PORT/async?customer=$CUS" GET)"
    ctrlc django-runserver; report django-runserver
}
flask() {
    for worker in gthread gevent; do
        echo "== Flask, gunicorn -k $worker (2 workers)"
        start "flask-$worker" flask "$PY" "${DEV[@]}" -m gunicorn -k "$worker" --threads 8 -w 2 -b "127.0.0.1:$APP_PORT" app:app
        wait_up "127.0.0.1:$APP_PORT/"
        echo "  $(post "127.0.0.1:$APP_PORT/pricing-session?customer=$CUS")"
        echo "  $(concurrent 20 "127.0.0.1:$APP_PORT/pricing-session?customer=$CUS")"
        inflight "127.0.0.1:$APP_PORT/pricing-session?customer=$CUS" "flask-$worker"; report "flask-$worker"
    done
}
celery() {
    export CELERY_DATA=$LOGS/celery-data
    for pool in prefork gevent; do
        echo "== Celery, --pool $pool (concurrency 4), filesystem broker"
        start "celery-$pool" celery "$PY" "${DEV[@]}" -m celery -A tasks worker --pool "$pool" --concurrency 4 --loglevel INFO
        fault '{"kind": "slow", "seconds": 1, "count": 8}'
        local t0; t0=$(date +%s.%N)
        (cd celery && "$PY" -c "import tasks; print('  results:', tasks.send_and_wait(8))")
        echo "  8 tasks (each 1 s at the fake) in $(echo "$(date +%s.%N) - $t0" | bc) s, worker start included"
        ctrlc "celery-$pool"; report "celery-$pool"
    done
}
jupyter() {
    echo "== Jupyter: nbclient runs jupyter/sessions.ipynb in an ipykernel"
    # The kernel is another process: ResourceWarnings shown through the environment (not
    # dev mode: under it ipykernel's own shutdown_request fails its loop-thread check).
    (cd jupyter && PYTHONWARNINGS=always::ResourceWarning "$PY" run.py) 2>&1 |
        grep -v -e '^Executing <' -e 'without encryption' | sed 's/^/  /'
}

start fake . "$PY" -m stripe_sessions fake-server --port "$FAKE_PORT"
wait_up "127.0.0.1:$FAKE_PORT/_fake/health"
for what in "${@:-fastapi django_asgi django_wsgi flask celery jupyter}"; do
    for w in $what; do "${w//-/_}"; done
done
ctrlc fake
echo "logs in $LOGS"
