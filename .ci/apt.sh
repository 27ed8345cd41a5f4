# shellcheck shell=bash
# Sourced by .ci scripts: waiting for the package manager instead of failing
# when another install or update holds its locks.
#
# apt-get waits for the dpkg locks itself with -o DPkg::Lock::Timeout, but
# not for /var/lib/apt/lists/lock, which apt-get update takes (apt 2.6 fails
# at once), and dpkg has no timeout at all: wait_for_package_manager waits
# until no process holds any of the locks open. The locks are fcntl locks,
# so flock(1) cannot test them; fuser sees every process that has one open.

# Seconds to wait for another package manager before giving up.
APT_LOCK_WAIT=${APT_LOCK_WAIT:-600}
# For every apt-get call: wait for the dpkg locks as long.
APT_LOCK_OPTS=(-o "DPkg::Lock::Timeout=$APT_LOCK_WAIT")

package_manager_locks=(
	/var/lib/dpkg/lock-frontend
	/var/lib/dpkg/lock
	/var/lib/apt/lists/lock
	/var/cache/apt/archives/lock
)

# wait_for_package_manager [SUDO...]: returns once no process holds a lock
# of apt or dpkg, or fails after APT_LOCK_WAIT seconds.
wait_for_package_manager() {
	local waited=0 holders
	if ! command -v fuser >/dev/null; then
		return 0 # psmisc missing: apt-get still waits with DPkg::Lock::Timeout
	fi
	while holders=$("$@" fuser "${package_manager_locks[@]}" 2>/dev/null) && [ -n "${holders// /}" ]; do
		if [ "$waited" -eq 0 ]; then
			echo "waiting for another package manager to finish (pids:$holders)"
		fi
		if [ "$waited" -ge "$APT_LOCK_WAIT" ]; then
			echo "the package manager is still busy after ${APT_LOCK_WAIT}s (pids:$holders)"
			return 1
		fi
		sleep 2
		waited=$((waited + 2))
	done
	if [ "$waited" -gt 0 ]; then echo "the package manager is free after ${waited}s"; fi
}

# dpkg_locked [SUDO...] -- DPKG-ARGS...: runs dpkg once the package manager
# is free; another process that takes the lock between the wait and dpkg's
# start makes dpkg fail with exit 2 at once, and then it waits again.
dpkg_locked() {
	local sudo=()
	while [ $# -gt 0 ] && [ "$1" != -- ]; do sudo+=("$1"); shift; done
	shift
	local tries=0 rc out
	while :; do
		wait_for_package_manager "${sudo[@]}" || return 1
		rc=0
		out=$("${sudo[@]}" dpkg "$@" 2>&1) || rc=$?
		if [ $rc -ne 0 ] && [ $tries -lt 5 ] && grep -q "lock" <<<"$out"; then
			tries=$((tries + 1))
			continue
		fi
		printf '%s\n' "$out"
		return $rc
	done
}

# apt_get_update [SUDO...]: apt-get update once the package manager is free;
# if another process takes the lists lock between the wait and apt-get's
# start (apt-get fails at once then), it waits again. The output goes to
# standard output only on failure.
apt_get_update() {
	local tries=0 rc out
	while :; do
		wait_for_package_manager "$@" || return 1
		rc=0
		out=$("$@" apt-get "${APT_LOCK_OPTS[@]}" update -qq 2>&1) || rc=$?
		if [ $rc -ne 0 ] && [ $tries -lt 5 ] && grep -q "Could not get lock" <<<"$out"; then
			tries=$((tries + 1))
			continue
		fi
		if [ $rc -ne 0 ]; then printf '%s\n' "$out"; fi
		return $rc
	done
}
