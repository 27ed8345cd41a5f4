/*
 * The team-queue claim protocol (model/README.md says it in words).
 *
 * A relay keeps per conversation a compare-and-set register (version,
 * value) in a claim space; staff devices claim, assign, resolve, archive
 * and reopen a conversation by a CAS from the version they last saw, and
 * tell every other staff device of each change by an end-to-end encrypted
 * team message, which may arrive late, out of order and more than once.
 * The relay may restart while a request is in flight; an admin removes a
 * member mid-run by replacing the space's write capability.
 *
 * Conversation 0 is addressed to a role account. Its holder changes (a
 * role record: take, leave, or an administrator's setting) and each
 * device learns the newest holder at a time of its own. The holder's
 * device then hands the conversation over to itself from the holder it
 * settled last (or claims it if it is new), and the last holder's device
 * releases it (back to new) when the role goes vacant: each a
 * compare-and-set from the device's view, as a claim is.
 *
 * Properties (each an assertion on a named boolean, so that pan's report
 * names the property it found broken):
 *   never_two_owners  no two staff devices hold different values at the
 *                     same version (so no two believe they own the
 *                     conversation at one version), and a device at the
 *                     register's version holds the register's value;
 *   stays_claimed     no write changes the owner of a claimed or assigned
 *                     conversation except assign or resolve by its owner,
 *                     the admins' reassignment after the owner's removal,
 *                     a handover of the role's conversation to the writer,
 *                     who holds the role, from its owner, the holder the
 *                     writer settled last, and a release by its owner,
 *                     who held the role and knows it vacant; and every
 *                     write follows the state machine;
 *   converged         at quiescence (every message delivered, no request
 *                     pending, every budget spent) every current staff
 *                     device's view equals the register;
 *   staff_owner       at quiescence no conversation is owned by the
 *                     removed member.
 * Deadlocks are reported as invalid end states.
 *
 * Broken variants, each of which pan must catch (model/model_test.go):
 *   BROKEN_NO_CAS              the relay writes blindly at the version
 *                              the client names, without comparing;
 *   BROKEN_ADOPT_NO_VERSION    a device whose CAS fails adopts the
 *                              returned value but keeps its old version;
 *   BROKEN_APPLY_ANY           devices apply every state change they
 *                              receive, not only newer ones;
 *   BROKEN_NO_REREAD           a device whose answer was lost in a
 *                              restart does not read the register again;
 *   BROKEN_NO_REVOKE           the write capability is not replaced when
 *                              a member is removed;
 *   BROKEN_REVOKE_ONLY_REMOVED only the removed member's writes are
 *                              refused, not every write made with the
 *                              replaced capability;
 *   BROKEN_HANDOVER_ANY        the role's new holder takes the role's
 *                              open conversation whoever owns it, not
 *                              only the previous holder's.
 */

/*
 * Bounds (override with spin -D...; model/model_test.go checks the
 * defaults and two other sets, model/README.md gives their figures).
 */
#ifndef NCONV
#define NCONV 1    /* conversations: 1 or 2 */
#endif
#ifndef OPS
#define OPS 2      /* operations the staff start, all devices together */
#endif
#ifndef PMSG
#define PMSG 1     /* messages from the patient (each may reopen) */
#endif
#ifndef RESTARTS
#define RESTARTS 1 /* relay restarts with requests in flight */
#endif
#ifndef DUPS
#define DUPS 1     /* team messages delivered twice */
#endif
#ifndef ROLES
#define ROLES 0    /* changes of the role account's holder; 0: no role */
#endif

#define NDEV 3    /* staff devices, one per member */
#define ADMIN 0   /* an admin, who removes LEAVER */
#define LEAVER 2  /* removed mid-run */
#define NONE 3    /* no owner */
#define MAXV 12   /* versions 0..MAXV-1; asserted never reached */
#define ROLECONV 0 /* the conversation addressed to the role account */
#define FIRST 1    /* the role's holder at the start */

/* States, and the value: state and owner in one byte. */
#define NEW 0
#define CLAIMED 1
#define ASSIGNED 2
#define RESOLVED 3
#define ARCHIVED 4
#define VAL(s, o) (((s) << 2) | (o))
#define ST(v) ((v) >> 2)
#define OWN(v) ((v) & 3)
#define OPEN(v) (ST(v) == CLAIMED || ST(v) == ASSIGNED)
#define CLOSED(v) (ST(v) == RESOLVED || ST(v) == ARCHIVED)

/*
 * The operation a write makes. The relay sees only an opaque value; the
 * operation travels with the request here only so that the model can
 * check stays_claimed where the write lands.
 */
#define OP_CLAIM 1
#define OP_ASSIGN 2
#define OP_RESOLVE 3
#define OP_ARCHIVE 4
#define OP_REOPEN 5
#define OP_REASSIGN 6
#define OP_HANDOVER 7
#define OP_RELEASE 8

/* Answers of SetClaim. */
#define OK 1
#define CONFLICT 2
#define REFUSED 3

/* The relay: the registers, durable across restarts. */
byte regver[NCONV];
byte regval[NCONV];
bit replaced; /* the write capability was replaced: LEAVER's is stale */
bit removed;  /* LEAVER is off the staff list */
bit knows[NDEV]; /* the device holds the new capability and staff list */
byte restarts = RESTARTS;

/* The staff's budget of operations. */
byte ops = OPS;

/*
 * The role account: its holder (a device, or NONE: vacant) and the
 * budget of changes. Per device: the holder it knows (the newest role
 * record it accepted), the holder whose handover it carried out last
 * (settled), and whether it has a settle to do (it learnt a holder; at
 * the start the holder's device has the new conversation to claim).
 */
byte holder = FIRST;
byte roles = ROLES;
byte held[NDEV] = FIRST;
byte settled[NDEV] = FIRST;
bit settle[NDEV];

/* Requests and answers; a restart drops both. */
chan req = [NDEV] of { byte, byte, byte, byte, byte, bit }; /* dev, op, conv, expected, value, capability */
chan rep[NDEV] = [1] of { byte, byte, byte };         /* answer, version, value */
bit inflight[NDEV]; /* a request of the device is in req or its answer in rep */
bit lost[NDEV];     /* a restart dropped the device's request or answer */

/*
 * Each device's view of each conversation (index d*NCONV+c), and its
 * inbox of team messages: a bit per version pending with the value sent
 * at that version, so that any pending message can be delivered next.
 */
byte vver[NDEV * NCONV];
byte vval[NDEV * NCONV];
int pend[NDEV * NCONV];
byte pval[NDEV * NCONV * MAXV];
byte dups = DUPS;
bit patient[NDEV * NCONV]; /* the patient wrote; the device has not acted on it */

/* Scratch for the assertions: hidden, not part of the state. */
hidden byte never_two_owners;
hidden byte stays_claimed;
hidden byte converged;
hidden byte staff_owner;
hidden byte version_bound;
hidden byte hi, hj;

/*
 * Witnesses: with -DWITNESS=n pan must find "assertion violated
 * unreached", which shows that event n happens in some run, so that the
 * properties are not checked on a model where it cannot:
 *   1 a SetClaim loses a race (conflict)
 *   2 a remaining member's SetClaim is refused (stale capability)
 *   3 the removed member's SetClaim is refused
 *   4 a restart drops the answer of a write that was applied
 *   5 the admins reassign a removed member's conversation
 *   6 a reopen lands
 *   7 a team message is delivered twice
 *   8 a team message arrives older than the device's view
 *   9 a handover from the previous holder lands
 *  10 a release lands
 *  11 a handover or release loses a race (conflict)
 */
#ifndef WITNESS
#define WITNESS 0
#endif
hidden byte unreached;
#define REACHED(n, cond) \
	if \
	:: WITNESS == n && (cond) -> unreached = 0; assert(unreached) \
	:: else \
	fi

#define VIEW(c) vval[d * NCONV + c] /* device d's view of conversation c */
#define STAFF(j) (!(removed && (j) == LEAVER))
/* whether device d knows j to be staff */
#define KNOWN_STAFF(j) (!(knows[d] && (j) == LEAVER))

/* never_two_owners over conversation c, after any view or inbox changes. */
inline check_views(c) {
	never_two_owners = 1;
	hi = 0;
	do
	:: hi < NDEV ->
		if
		:: STAFF(hi) && vver[hi * NCONV + c] == regver[c] && vval[hi * NCONV + c] != regval[c] ->
			never_two_owners = 0
		:: else
		fi;
		hj = hi + 1;
		do
		:: hj < NDEV ->
			if
			:: STAFF(hi) && STAFF(hj) && vver[hi * NCONV + c] == vver[hj * NCONV + c] &&
			   vval[hi * NCONV + c] != vval[hj * NCONV + c] ->
				never_two_owners = 0
			:: else
			fi;
			hj++
		:: else -> break
		od;
		hi++
	:: else -> break
	od;
	hi = 0;
	hj = 0;
	assert(never_two_owners)
}

/* A device applies a state change: only a newer version replaces its view. */
inline apply(d, c, ver, val) {
#ifdef BROKEN_APPLY_ANY
	vver[d * NCONV + c] = ver;
	vval[d * NCONV + c] = val;
#else
	if
	:: ver > vver[d * NCONV + c] ->
		vver[d * NCONV + c] = ver;
		vval[d * NCONV + c] = val
	:: else
	fi;
#endif
	check_views(c)
}

/*
 * A device sends a state change to every other staff device. Once LEAVER
 * is removed the team neither sends to it nor accepts what it sends (its
 * messages sent before the removal still arrive).
 */
inline broadcast(d, c, ver, val) {
	if
	:: STAFF(d) ->
		hi = 0;
		do
		:: hi < NDEV ->
			if
			:: hi != d && STAFF(hi) ->
				/* a version's value is one: two sends of one version agree */
				never_two_owners = ((pend[hi * NCONV + c] & (1 << ver)) == 0 || pval[(hi * NCONV + c) * MAXV + ver] == val);
				assert(never_two_owners);
				pend[hi * NCONV + c] = pend[hi * NCONV + c] | (1 << ver);
				pval[(hi * NCONV + c) * MAXV + ver] = val
			:: else
			fi;
			hi++
		:: else -> break
		od;
		hi = 0
	:: else
	fi
}

/*
 * Delivery of the team message at version v of conversation c to device
 * d; DELIVER_DUP delivers it and leaves it pending, to come again.
 */
#define SLOT(c, v) pval[(d * NCONV + c) * MAXV + v]
#define DELIVER(c, v) \
	:: d_step { (pend[d * NCONV + c] & (1 << v)) -> \
		REACHED(8, v <= vver[d * NCONV + c]); \
		tv = SLOT(c, v); \
		pend[d * NCONV + c] = pend[d * NCONV + c] & ~(1 << v); \
		SLOT(c, v) = 0; \
		apply(d, c, v, tv); \
		tv = 0 }
#if DUPS > 0
#define DELIVER_DUP(c, v) \
	:: d_step { dups > 0 && (pend[d * NCONV + c] & (1 << v)) -> \
		REACHED(7, 1); \
		dups--; \
		apply(d, c, v, SLOT(c, v)) }
#else
#define DELIVER_DUP(c, v)
#endif
#define DELIVER_ALL(c) \
	DELIVER(c, 1) DELIVER(c, 2) DELIVER(c, 3) DELIVER(c, 4) DELIVER(c, 5) DELIVER(c, 6) \
	DELIVER(c, 7) DELIVER(c, 8) DELIVER(c, 9) DELIVER(c, 10) DELIVER(c, 11) \
	DELIVER_DUP(c, 1) DELIVER_DUP(c, 2) DELIVER_DUP(c, 3) DELIVER_DUP(c, 4) \
	DELIVER_DUP(c, 5) DELIVER_DUP(c, 6) DELIVER_DUP(c, 7) DELIVER_DUP(c, 8) \
	DELIVER_DUP(c, 9) DELIVER_DUP(c, 10) DELIVER_DUP(c, 11)

/*
 * SetClaim(expected = the version the device saw, value): request sends
 * it (inside the step that decides the operation), answer waits for the
 * answer. On a lost answer the device reads the register again
 * (GetClaim) and, if it moved past the version the request expected,
 * sends what it read: its own write may have landed, and only it knows
 * to tell the team.
 */
inline request(c, op, nv) {
	e = vver[d * NCONV + c];
	inflight[d] = 1;
	req!d, op, c, e, nv, knows[d]
}

/*
 * A reopen that failed is tried again while the conversation is closed
 * in the device's view (it adopted the current state), and once the
 * device has the new capability if it was refused.
 */
inline retry_reopen(c) {
	if
	:: reopening -> patient[d * NCONV + c] = (stale || CLOSED(VIEW(c)))
	:: else
	fi;
	reopening = 0
}

inline answer(c) {
	if
	:: d_step {
		rep[d]?res, rv, rval ->
		inflight[d] = 0;
		if
		:: res == OK ->
			apply(d, c, rv, rval);
			broadcast(d, c, rv, rval);
			/* a won write ends the role's settle (queueWrite returns) */
			if
			:: settling -> settled[d] = held[d]; settle[d] = 0
			:: else
			fi
		:: res == CONFLICT ->
			REACHED(1, 1);
			REACHED(11, settling);
#ifdef BROKEN_ADOPT_NO_VERSION
			vval[d * NCONV + c] = rval;
			check_views(c)
#else
			apply(d, c, rv, rval)
#endif
		:: res == REFUSED ->
			REACHED(2, d != LEAVER);
			REACHED(3, d == LEAVER);
			stale = 1;
			/* the client gives up the role's writes (ErrNotStaff) and settles */
			if
			:: settling -> settled[d] = held[d]; settle[d] = 0
			:: else
			fi
		fi;
		retry_reopen(c);
		settling = 0;
		res = 0; rv = 0; rval = 0; e = 0
	}
	:: d_step {
		lost[d] ->
		lost[d] = 0;
		inflight[d] = 0;
#ifndef BROKEN_NO_REREAD
		if
		:: regver[c] > e -> broadcast(d, c, regver[c], regval[c])
		:: else
		fi;
		apply(d, c, regver[c], regval[c]);
#endif
		retry_reopen(c);
		settling = 0;
		e = 0
	}
	fi
}

/*
 * The operations of device d on conversation c, each enabled only when
 * the device's view allows it (so that quiescence means none is).
 */
#define OTHER1 ((d + 1) % NDEV)
#define OTHER2 ((d + 2) % NDEV)
#define MAY (ops > 0 && !stale)
#define OWNS(c) (OPEN(VIEW(c)) && OWN(VIEW(c)) == d)
#define OPERATIONS(c) \
	/* claim a new (or reopened) conversation */ \
	:: d_step { MAY && ST(VIEW(c)) == NEW -> ops--; request(c, OP_CLAIM, VAL(CLAIMED, d)) }; \
		answer(c) \
	/* the owner assigns it to a colleague */ \
	:: d_step { MAY && OWNS(c) && KNOWN_STAFF(OTHER1) -> ops--; request(c, OP_ASSIGN, VAL(ASSIGNED, OTHER1)) }; \
		answer(c) \
	:: d_step { MAY && OWNS(c) && KNOWN_STAFF(OTHER2) -> ops--; request(c, OP_ASSIGN, VAL(ASSIGNED, OTHER2)) }; \
		answer(c) \
	/* the owner resolves it */ \
	:: d_step { MAY && OWNS(c) -> ops--; request(c, OP_RESOLVE, VAL(RESOLVED, NONE)) }; \
		answer(c) \
	/* anyone archives a resolved one */ \
	:: d_step { MAY && ST(VIEW(c)) == RESOLVED -> ops--; request(c, OP_ARCHIVE, VAL(ARCHIVED, NONE)) }; \
		answer(c)

/* The admin's reassignment of conversation c, owned by LEAVER. */
#define LEAVERS(c) (OPEN(regval[c]) && OWN(regval[c]) == LEAVER)
#define REASSIGN(c, nv) \
	:: d_step { c < NCONV && LEAVERS(c) -> \
		apply(d, c, regver[c], regval[c]); \
		request(c, OP_REASSIGN, nv) }; \
		answer(c)

/*
 * The device's part of the role's handover (client/roles.go handOver),
 * from B = the holder it knows and A = the holder it settled last. A won
 * write ends it; after a lost race (adopted) or a lost answer (read
 * again) it decides again from its view, as the client's queueWrite
 * does; a refused one ends it (the client gives up, ErrNotStaff):
 *   B is d: a new conversation is claimed; one A owns (A another
 *           member) is handed to d, assigned (queue.HandOver);
 *   B is nobody and A is d: the conversation d owns goes back to new
 *           (queue.Release).
 * Anything else (owned by a colleague A assigned it to, closed) is not
 * touched; then the device notes B as settled.
 */
#define SETTLE_V VIEW(ROLECONV)
#define TAKE_NEW(B) ((B) == d && ST(SETTLE_V) == NEW)
#ifdef BROKEN_HANDOVER_ANY
#define TAKE_FROM(B) ((B) == d && OPEN(SETTLE_V) && OWN(SETTLE_V) != d)
#else
#define TAKE_FROM(B) ((B) == d && settled[d] != d && settled[d] != NONE && \
                      OPEN(SETTLE_V) && OWN(SETTLE_V) == settled[d])
#endif
#define RELEASE(B) ((B) == NONE && settled[d] == d && OPEN(SETTLE_V) && OWN(SETTLE_V) == d)
/*
 * Settle with B when T holds. The client settles right after it accepts
 * a role record, before it receives anything else, so learning a holder
 * and deciding are one step; the writes then go out as any other.
 */
#define SETTLE(T, B) \
	:: d_step { (T) && TAKE_NEW(B) -> held[d] = B; settle[d] = 1; \
		settling = 1; request(ROLECONV, OP_HANDOVER, VAL(CLAIMED, d)) }; \
		answer(ROLECONV) \
	:: d_step { (T) && TAKE_FROM(B) -> held[d] = B; settle[d] = 1; \
		settling = 1; request(ROLECONV, OP_HANDOVER, VAL(ASSIGNED, d)) }; \
		answer(ROLECONV) \
	:: d_step { (T) && RELEASE(B) -> held[d] = B; settle[d] = 1; \
		settling = 1; request(ROLECONV, OP_RELEASE, VAL(NEW, NONE)) }; \
		answer(ROLECONV) \
	:: d_step { (T) && !TAKE_NEW(B) && !TAKE_FROM(B) && !RELEASE(B) -> \
		held[d] = B; settled[d] = B; settle[d] = 0 }
/* the newest role record reaches a device of the role's team */
#define LEARN (!settle[d] && d != LEAVER && held[d] != holder)

/* A staff device: one request at a time; team messages whenever. */
proctype device(byte d) {
	byte c, e, res, rv, rval, tv;
	bit stale;     /* SetClaim refused: the capability was replaced */
	bit reopening; /* the request in flight is a reopen */
	bit settling;  /* the request in flight is the role's handover or release */

end:
	do
	DELIVER_ALL(0)
#if NCONV > 1
	DELIVER_ALL(1)
#endif
	OPERATIONS(0)
#if NCONV > 1
	OPERATIONS(1)
#endif
	/* the newest role record reaches the device, which settles */
	SETTLE(LEARN, holder)
	/* a settle goes on after a lost race or a lost answer */
	SETTLE(settle[d], held[d])
	/* the new capability and staff list reach a remaining member */
	:: d_step { removed && !knows[d] && d != LEAVER -> knows[d] = 1; stale = 0 }
	/* the staff may stop early: every smaller budget is checked too */
	:: d_step { ops > 0 -> ops = 0 }
	/*
	 * The patient's message arrives: a closed conversation is reopened;
	 * when the reopen fails the device adopts the current state and tries
	 * again while that is closed too.
	 */
	:: d_step { !stale && patient[d * NCONV + 0] && !CLOSED(VIEW(0)) -> patient[d * NCONV + 0] = 0 }
	:: d_step { !stale && patient[d * NCONV + 0] && CLOSED(VIEW(0)) ->
		reopening = 1;
		request(0, OP_REOPEN, VAL(NEW, NONE)) };
		answer(0)
	/*
	 * The admin removes LEAVER: replaces the write capability, then reads
	 * every register; a conversation LEAVER owns is reassigned to a
	 * colleague or put back to new; the state read is sent to the team,
	 * since LEAVER's last change may not have reached it.
	 */
	:: d_step { d == ADMIN && !removed -> replaced = 1; removed = 1; knows[d] = 1; c = 0 }
		do
		:: d_step { c < NCONV && !LEAVERS(c) ->
			apply(d, c, regver[c], regval[c]);
			broadcast(d, c, regver[c], regval[c]);
			c++ }
		REASSIGN(c, VAL(NEW, NONE))
		REASSIGN(c, VAL(ASSIGNED, 0))
		REASSIGN(c, VAL(ASSIGNED, 1))
		:: c >= NCONV -> c = 0; break
		od
	od
}

/* Whether a write from cur to nv by device d with operation op is allowed. */
inline check_write(c, d, op, nv) {
	stays_claimed = 1;
	if
	:: OPEN(regval[c]) && OWN(nv) != OWN(regval[c]) || OPEN(regval[c]) && !OPEN(nv) ->
		stays_claimed = ((op == OP_ASSIGN || op == OP_RESOLVE) && d == OWN(regval[c])) ||
		                (op == OP_REASSIGN && OWN(regval[c]) == LEAVER && removed) ||
		                (op == OP_HANDOVER && held[d] == d && settled[d] != d && OWN(regval[c]) == settled[d]) ||
		                (op == OP_RELEASE && held[d] == NONE && settled[d] == d && OWN(regval[c]) == d)
	:: else
	fi;
	if
	:: op == OP_CLAIM -> stays_claimed = stays_claimed && ST(regval[c]) == NEW
	:: op == OP_ASSIGN || op == OP_RESOLVE -> stays_claimed = stays_claimed && OPEN(regval[c])
	:: op == OP_ARCHIVE -> stays_claimed = stays_claimed && ST(regval[c]) == RESOLVED
	:: op == OP_REOPEN -> stays_claimed = stays_claimed && CLOSED(regval[c])
	:: op == OP_REASSIGN -> stays_claimed = stays_claimed && OPEN(regval[c])
	:: op == OP_HANDOVER -> stays_claimed = stays_claimed && c == ROLECONV &&
		(ST(regval[c]) == NEW && nv == VAL(CLAIMED, d) || OPEN(regval[c]) && nv == VAL(ASSIGNED, d))
	:: op == OP_RELEASE -> stays_claimed = stays_claimed && c == ROLECONV && OPEN(regval[c]) && nv == VAL(NEW, NONE)
	fi;
	assert(stays_claimed)
}

active proctype relay() {
	byte d, op, c, e, v, res;
	bit cap;

end:
	do
	:: d_step {
		req?d, op, c, e, v, cap ->
		if
#if defined(BROKEN_REVOKE_ONLY_REMOVED)
		:: d == LEAVER && replaced -> rep[d]!REFUSED, 0, 0
#elif !defined(BROKEN_NO_REVOKE)
		:: replaced && !cap -> rep[d]!REFUSED, 0, 0
#endif
		:: else ->
#ifdef BROKEN_NO_CAS
			check_write(c, d, op, v);
			regver[c] = e + 1;
			regval[c] = v;
			rep[d]!OK, regver[c], regval[c]
#else
			if
			:: regver[c] == e ->
				REACHED(5, op == OP_REASSIGN);
				REACHED(6, op == OP_REOPEN);
				REACHED(9, op == OP_HANDOVER && OPEN(regval[c]));
				REACHED(10, op == OP_RELEASE);
				check_write(c, d, op, v);
				regver[c]++;
				regval[c] = v;
				rep[d]!OK, regver[c], regval[c]
			:: else ->
				rep[d]!CONFLICT, regver[c], regval[c]
			fi
#endif
		fi;
		version_bound = regver[c] < MAXV;
		assert(version_bound);
		d = 0; op = 0; c = 0; e = 0; v = 0; cap = 0
	}
	/*
	 * A restart while requests are in flight: those not yet applied are
	 * lost, and so are the answers of those applied; the registers stay.
	 */
	:: d_step {
		restarts > 0 && (inflight[0] || inflight[1] || inflight[2]) ->
		restarts--;
		do
		:: req?_, _, _, _, _, _
		:: empty(req) -> break
		od;
		d = 0;
		do
		:: d < NDEV ->
			if
			:: rep[d]?res, _, _ -> REACHED(4, res == OK); res = 0
			:: empty(rep[d])
			fi;
			if
			:: inflight[d] -> lost[d] = 1
			:: else
			fi;
			d++
		:: else -> break
		od;
		d = 0
	}
	od
}

/* The patient writes; every current staff device receives it. */
active proctype patientside() {
	byte n = PMSG, j;
	do
	:: d_step {
			n > 0 ->
			n--;
			j = 0;
			do
			:: j < NDEV ->
				if
				:: STAFF(j) -> patient[j * NCONV + 0] = 1
				:: else
				fi;
				j++
			:: else -> break
			od;
			j = 0
		}
	:: else -> break
	od
}

/*
 * The role's holder changes: a staff member takes it, its holder leaves
 * it, or an administrator sets it (a role record, which each device
 * learns at a time of its own) among the members of the role's team,
 * devices 0 and 1 (LEAVER is staff of the queue, not of the role's
 * team). The changes may stop early.
 */
#if ROLES > 0
active proctype roleside() {
	do
	:: d_step { roles > 0 && holder != 0 -> roles--; holder = 0 }
	:: d_step { roles > 0 && holder != 1 -> roles--; holder = 1 }
	:: d_step { roles > 0 && holder != NONE -> roles--; holder = NONE }
	:: d_step { roles > 0 -> roles = 0 }
	:: roles == 0 -> break
	od
}
#endif

/* At quiescence: converged and staff_owner. */
active proctype quiescence() {
	byte d, c;
	timeout ->
	atomic {
		converged = removed;
		staff_owner = 1;
		c = 0;
		do
		:: c < NCONV ->
			staff_owner = staff_owner && !(OPEN(regval[c]) && OWN(regval[c]) == LEAVER);
			d = 0;
			do
			:: d < NDEV ->
				if
				:: STAFF(d) && (vver[d * NCONV + c] != regver[c] || vval[d * NCONV + c] != regval[c]) ->
					converged = 0
				:: else
				fi;
				d++
			:: else -> break
			od;
			c++
		:: else -> break
		od;
		assert(converged);
		assert(staff_owner)
	}
}

init {
	atomic {
#if ROLES > 0
		/* the new conversation reaches the role holder's device */
		settle[FIRST] = 1;
#endif
		run device(0);
		run device(1);
		run device(2)
	}
}
