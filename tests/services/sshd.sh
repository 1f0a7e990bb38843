#!/usr/bin/env bash
# A throwaway sshd on 127.0.0.1 for the transfer tests: key-only, every file in $DIR, nothing in /etc/ssh
# or ~/.ssh touched. Writes $DIR/ssh_config with host alias `wxpipe-test`:
#   ssh -F $DIR/ssh_config wxpipe-test   |   rsync -e "ssh -F $DIR/ssh_config" SRC wxpipe-test:DST
# usage: sshd.sh start|stop DIR PORT
set -euo pipefail
ACTION="$1"; DIR="$2"; PORT="${3:-2222}"
mkdir -p "$DIR"; chmod 700 "$DIR"
if [ "$ACTION" = stop ]; then
  [ -f "$DIR/sshd.pid" ] && kill "$(cat "$DIR/sshd.pid")" 2>/dev/null; rm -f "$DIR/sshd.pid"; exit 0
fi
SSHD="$(command -v sshd || echo /usr/sbin/sshd)"
for tool in "$SSHD" ssh ssh-keygen rsync; do
  command -v "$tool" >/dev/null || { echo "sshd.sh: $tool is missing (apt-get install openssh-server openssh-client rsync)" >&2; exit 1; }
done
[ -d /run/sshd ] || { mkdir -p /run/sshd; chmod 755 /run/sshd; }  # sshd's privilege-separation directory
[ -f "$DIR/host_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -f "$DIR/host_ed25519"
[ -f "$DIR/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -f "$DIR/id_ed25519" -C wxpipe-test
cp "$DIR/id_ed25519.pub" "$DIR/authorized_keys"; chmod 600 "$DIR/authorized_keys"
cat > "$DIR/sshd_config" <<CFG
ListenAddress 127.0.0.1
Port $PORT
HostKey $DIR/host_ed25519
PidFile $DIR/sshd.pid
AuthorizedKeysFile $DIR/authorized_keys
# \$DIR may sit under a world-readable tree (/tmp): relax ownership checks for this test key only
StrictModes no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowUsers $(id -un)
UsePAM no
X11Forwarding no
AllowTcpForwarding no
PermitTunnel no
MaxStartups 64:30:128
MaxSessions 64
LogLevel ERROR
CFG
cat > "$DIR/ssh_config" <<CFG
Host wxpipe-test
  HostName 127.0.0.1
  Port $PORT
  User $(id -un)
  IdentityFile $DIR/id_ed25519
  IdentitiesOnly yes
  UserKnownHostsFile $DIR/known_hosts
  StrictHostKeyChecking accept-new
  BatchMode yes
CFG
"$SSHD" -t -f "$DIR/sshd_config"
"$SSHD" -f "$DIR/sshd_config" -E "$DIR/sshd.log"
for _ in $(seq 1 100); do ssh -F "$DIR/ssh_config" wxpipe-test true 2>/dev/null && exit 0; sleep 0.1; done
echo "sshd.sh: sshd did not answer on 127.0.0.1:$PORT" >&2; tail -20 "$DIR/sshd.log" >&2; exit 1
