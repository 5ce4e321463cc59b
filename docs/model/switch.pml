/*
 * switch.pml: revdoor's fenced cutover (switch-traffic / reverse-traffic),
 * its switch journal and recovery, leader failover, fences, replication
 * positions and routing, for 2 shards per side and 2 coordinators.
 *
 * Read README.md beside this file first: what is abstracted, how each
 * label maps to coordinator/src/switch/, and how to run it.
 *
 * Variants (spin -D...):
 *   (none)            the protocol as coded; spin must find no error.
 *   BROKEN_FENCE_POS  negative model: each old shard's final position is
 *                     read before its fence is installed; spin must find a
 *                     lost acknowledged write.
 *   ZOMBIE            a coordinator whose lease is gone keeps running its
 *                     MySQL statements until its next etcd write fails or
 *                     a fence row refuses its fencing token (the code:
 *                     every fence row carries the token of the leader that
 *                     last wrote it; a leader claims every row of the
 *                     workflow before it resumes a request left midway);
 *                     must verify.
 *   ZOMBIE + NO_TOKEN the same without the token guard (the code before
 *                     it): spin finds both sides writable (with NO_FINAL,
 *                     which leaves out the end-state checks so that the
 *                     first violation reported is a writable-side one).
 *                     See README.md.
 *   BROKEN_FINISH     negative model: closing a request deletes the request
 *                     key whatever it holds (the code before the fix); a
 *                     retried close deletes the operator's next request
 *                     unrun (README.md, finding 2).
 * Bounds (override with -D): NREQ requests, WRITES application writes,
 * CRASHES leader losses, ERRORS failed calls.
 */

#ifndef NREQ
#define NREQ 2
#endif
#ifndef WRITES
#define WRITES 2
#endif
#ifndef CRASHES
#define CRASHES 2
#endif
#ifndef ERRORS
#define ERRORS 1
#endif

#define NS 2                    /* shards per side */
#define S 0                     /* source keyspace */
#define T 1                     /* target keyspace */
#define SH(side, i) ((side) * NS + (i))

/* workflow phase (WorkflowState.phase) */
#define RUNNING 0
#define SWITCHED 1
#define REVERSED 2
#define SERVES(ph) ((ph) == SWITCHED -> T : S)

/* request kinds (Action) */
#define SWITCH 1
#define REVERSE 2

/* journal outcome (Outcome); NONE: no entry for that request yet */
#define NONE 0
#define RUN 1
#define DONE 2
#define ROLLEDBACK 3
#define REFUSED 4

/* journal steps (Step) that recovery reads, as bits of the begun / done
 * sets */
#define FENCE 1
#define FLIP 2
#define UNFENCE 4

/* ---- MySQL / MariaDB: one server per shard ---------------------------- */
bit fenced[2 * NS];     /* _revdoor.fences rows of the workflow: fenced = 1 */
byte pos[2 * NS];       /* acknowledged application writes: binlog positions 1..len */

/* ---- replication: one stream per origin shard and direction ----------- */
/* The stream from origin shard x (forward when x is a source shard,
 * reverse when a target shard) has applied positions 1..rep[x] of x on the
 * other side (capture and apply merged: see README). */
byte rep[2 * NS];
byte dstart[2 * NS];    /* the stream spec's start_position (create-streams) */
byte running = S;       /* origin side of the direction whose streams run */
bit lost;               /* an acknowledged write was skipped */

/* ---- etcd -------------------------------------------------------------- */
byte leader;            /* coordinator holding the leader lease; 0: none */
byte phase = RUNNING;   /* workflow state */
byte serving = S;       /* routing rules: the keyspace that serves */
byte req;               /* the pending request (kind); 0: none */
byte reqid;             /* its id */
byte jout[NREQ + 1];    /* journal entry of each request: outcome, */
byte jb[NREQ + 1];      /* steps begun, */
byte jd[NREQ + 1];      /* steps done */

/* ---- bounds ------------------------------------------------------------ */
byte nreq, writes, crashes, errors;

/* ---- fencing tokens ----------------------------------------------------- */
byte ntok;              /* the last leader's token (etcd: the leader key's revision) */
byte rtok[2 * NS];      /* _revdoor.fences: the token of the leader that last wrote the row */

#define OPEN(x) (fenced[x] == 0)
#define WRITABLE(side) (OPEN(SH(side, 0)) || OPEN(SH(side, 1)))

/* Crash-stop (the default): the leader may die or lose its lease before
 * any of its calls; it then runs nothing more, and its memory is gone.
 * ZOMBIE: the lease may be lost at any moment (the Faults process) while
 * the process runs on; it still runs its MySQL statements, and stops when
 * an etcd write of its fails or a fence row holds a later leader's token
 * (`WHERE token <= mine` changed nothing: Deposed). With NO_TOKEN the
 * statements carry no token at all. */
#ifdef ZOMBIE
#ifdef NO_TOKEN
#define MAYSQL(x) true
#else
#define MAYSQL(x) (rtok[x] <= mytok)
#endif
#define CRASH
#else
#define MAYSQL(x) (leader == me)
#define CRASH :: atomic { leader == me && crashes < CRASHES -> crashes++; leader = 0 }; goto deposed
#endif

/* Registry::commit: a write guarded by the leader key. It lands only while
 * `me` leads (else Deposed: back to standby); it may fail without landing,
 * or land and still report a failure (an ambiguous commit). */
#define ETCD(effect, onerr) \
  if \
  :: atomic { leader == me -> effect } \
  :: atomic { leader == me && errors < ERRORS -> errors++ }; goto onerr \
  :: atomic { leader == me && errors < ERRORS -> effect; errors++ }; goto onerr \
  :: leader != me -> goto deposed \
  CRASH \
  fi

/* A statement on shard x's fence row: runs, fails, or runs and reports a
 * failure (the connection lost before the OK); refused (Deposed) where a
 * later leader's token is on the row. */
#define SQL(x, effect, onerr) \
  if \
  :: atomic { MAYSQL(x) -> effect; rtok[x] = mytok } \
  :: atomic { MAYSQL(x) && errors < ERRORS -> errors++ }; goto onerr \
  :: atomic { MAYSQL(x) && errors < ERRORS -> effect; rtok[x] = mytok; errors++ }; goto onerr \
  :: !MAYSQL(x) -> goto deposed \
  :: leader != me -> goto deposed \
  CRASH \
  fi

/* switch::claim_fences: the leader's token onto shard x's fence row
 * (`SET token = mine WHERE token < mine`) before it acts on a request. */
#ifdef NO_TOKEN
#define CLAIM(x, onerr) skip
#else
#define CLAIM(x, onerr) SQL(x, skip, onerr)
#endif

/* journal::finish deletes the request key only while it holds this
 * request (a nested etcd transaction comparing its mod revision). */
#ifdef BROKEN_FINISH
#define DROPREQ req = 0
#else
#define DROPREQ req = (reqid == id -> 0 : req)
#endif

/* write_journal: the whole entry as this coordinator holds it. */
#define JOURNAL(onerr) ETCD(jb[id] = mb; jd[id] = md, onerr)

proctype Coord(byte me)
{
  byte kind, id, st, oldside, newside, nxt;
  byte mytok;           /* the token of this coordinator's leadership */
  byte mb, md;          /* the request's journal entry in memory: begun, done */
  byte fpos0, fpos1;    /* fence positions of the old shards */
  byte spos0, spos1;    /* recorded positions of the new shards */

deposed:
  /* Lease lost (or the process died and restarted): memory is gone. */
forget:
  skip;
  d_step {
    kind = 0; id = 0; st = 0; oldside = 0; newside = 0; nxt = 0; mb = 0; md = 0;
    fpos0 = 0; fpos1 = 0; spos0 = 0; spos1 = 0
  };
  if
  :: leader == me -> goto pass
  :: else
  fi;
end_standby:
  atomic { leader == 0 -> leader = me; ntok++; mytok = ntok };

pass:   /* leader::lead, one pass: switch::handle_request */
end_lead:
  if
  :: atomic { leader == me && req != 0 -> kind = req; id = reqid; mb = jb[id]; md = jd[id] }
  :: leader != me -> goto deposed
  fi;
  if
  :: jout[id] != NONE && jout[id] != RUN ->
     /* finished; only the request key was left behind */
     ETCD(req = 0, idle);
     goto idle
  :: jout[id] == RUN ->
claim:  /* resuming a request left midway: every fence row of the workflow first */
     CLAIM(SH(S, 0), idle); CLAIM(SH(S, 1), idle);
     CLAIM(SH(T, 0), idle); CLAIM(SH(T, 1), idle);
     goto recover
  :: jout[id] == NONE -> ETCD(jout[id] = RUN; jb[id] = 0; jd[id] = 0, idle)
  fi;

  /* ---- Cutover::run ---------------------------------------------------- */
  /* Journal records that recovery never reads (check, catch-up,
   * record-positions and create-streams begun/done, fence and unfence
   * done, flip begun) are not modeled as separate writes: a crash or an
   * error at one of them leads where one at the neighbouring step does. */
begin:  /* Cutover::begin: the state read, SwitchPlan */
  atomic {
    st = phase;
    oldside = SERVES(st);
    newside = 1 - oldside;
    nxt = (kind == SWITCH -> SWITCHED : REVERSED)
  };
  if
  :: (kind == SWITCH && st == SWITCHED) || (kind == REVERSE && st != SWITCHED) -> goto refused
  :: else
  fi;

check:  /* lag gate, shards reachable (+ prepare, warm_up): a refusal changes nothing */
  if
  :: skip
  :: atomic { errors < ERRORS -> errors++ }; goto refused
  fi;

fence:  /* one fence transaction per old shard; its GTID: the final position */
  mb = mb | FENCE; JOURNAL(failed);
#ifdef BROKEN_FENCE_POS
  atomic { MAYSQL(SH(oldside, 0)) -> fpos0 = pos[SH(oldside, 0)] };
  SQL(SH(oldside, 0), fenced[SH(oldside, 0)] = 1, failed);
  atomic { MAYSQL(SH(oldside, 1)) -> fpos1 = pos[SH(oldside, 1)] };
  SQL(SH(oldside, 1), fenced[SH(oldside, 1)] = 1, failed);
#else
  SQL(SH(oldside, 0), fenced[SH(oldside, 0)] = 1; fpos0 = pos[SH(oldside, 0)], failed);
  SQL(SH(oldside, 1), fenced[SH(oldside, 1)] = 1; fpos1 = pos[SH(oldside, 1)], failed);
#endif

catch_up:  /* every old-direction apply at its origin's fence position, or --timeout */
  if
  :: rep[SH(oldside, 0)] >= fpos0 && rep[SH(oldside, 1)] >= fpos1
  :: !(rep[SH(oldside, 0)] >= fpos0 && rep[SH(oldside, 1)] >= fpos1) -> goto failed
  fi;

record_positions:  /* each new shard's position: where the new direction starts */
  atomic { spos0 = pos[SH(newside, 0)]; spos1 = pos[SH(newside, 1)] };

create_streams:  /* the new direction's stream specs, starting there */
  ETCD(dstart[SH(newside, 0)] = spos0; dstart[SH(newside, 1)] = spos1, failed);

flip_routing:  /* routing, phase and journal (flip begun and done) in one transaction */
  mb = mb | FLIP;
  md = md | FLIP;
  ETCD(phase = nxt; serving = newside; jb[id] = mb; jd[id] = md, failed);

unfence:  /* one transaction per new shard; done journaled with the outcome */
  SQL(SH(newside, 0), fenced[SH(newside, 0)] = 0, failed);
  SQL(SH(newside, 1), fenced[SH(newside, 1)] = 0, failed);
  md = md | UNFENCE;

finish_done:  /* journal outcome, request removed: one transaction */
  ETCD(jout[id] = DONE; DROPREQ; jb[id] = mb; jd[id] = md, failed);
  goto idle;

refused:  /* finish(Refused) */
  ETCD(jout[id] = REFUSED; DROPREQ; jb[id] = mb; jd[id] = md, idle);
  goto idle;

failed:  /* handle_request's error arm */
  if
  :: (mb & FLIP) -> goto recover
  :: else -> goto rollback
  fi;

recover:  /* journal::recover: finish if the flip landed, else roll back */
  atomic { st = phase; newside = SERVES(st) };
  if
  :: (mb & FLIP) && ((kind == SWITCH && st == SWITCHED) || (kind == REVERSE && st == REVERSED))
  :: else -> goto rollback
  fi;
  md = md | FLIP;
  if
  :: !(md & UNFENCE) ->
     SQL(SH(newside, 0), fenced[SH(newside, 0)] = 0, idle);
     SQL(SH(newside, 1), fenced[SH(newside, 1)] = 0, idle);
     md = md | UNFENCE; JOURNAL(idle)
  :: else
  fi;
recover_done:
  ETCD(jout[id] = DONE; DROPREQ; jb[id] = mb; jd[id] = md, idle);
  goto idle;

rollback:  /* journal::rollback: before the flip */
  atomic { st = phase; oldside = SERVES(st) };
  if
  :: (mb & FENCE) ->
     SQL(SH(oldside, 0), fenced[SH(oldside, 0)] = 0, idle);
     SQL(SH(oldside, 1), fenced[SH(oldside, 1)] = 0, idle)
  :: else
  fi;
  /* (never-run reverse stream specs deleted: no modeled effect) */
rollback_done:
  ETCD(jout[id] = ROLLEDBACK; DROPREQ; jb[id] = mb; jd[id] = md, idle);

idle:  /* the pass ends (an error is logged); the next one starts */
  goto forget
}

/* Workers: the active direction's streams. When routing moved, the
 * assignment pass stops the old direction and starts the new one; a
 * capture resumes from its checkpoint or, if later, the start position the
 * switch recorded (capture::stream::start_position). */
proctype Streams()
{
end_streams:
  do
  :: atomic {
       running != serving ->
       running = serving;
       if
       :: dstart[SH(running, 0)] > rep[SH(running, 0)] ->
          lost = 1; rep[SH(running, 0)] = dstart[SH(running, 0)]
       :: else
       fi;
       if
       :: dstart[SH(running, 1)] > rep[SH(running, 1)] ->
          lost = 1; rep[SH(running, 1)] = dstart[SH(running, 1)]
       :: else
       fi
     }
  :: atomic { rep[SH(running, 0)] < pos[SH(running, 0)] -> rep[SH(running, 0)]++ }
  :: atomic { rep[SH(running, 1)] < pos[SH(running, 1)] -> rep[SH(running, 1)]++ }
  od
}

/* Applications with stale or fresh routing: any client may write to any
 * shard; a write commits (is acknowledged) only where not fenced. The
 * fence's UPDATE waits for in-flight writers, so a write is atomic with
 * respect to the fence. */
proctype Apps()
{
end_apps:
  do
  :: atomic { writes < WRITES && OPEN(0) -> pos[0]++; writes++ }
  :: atomic { writes < WRITES && OPEN(1) -> pos[1]++; writes++ }
  :: atomic { writes < WRITES && OPEN(2) -> pos[2]++; writes++ }
  :: atomic { writes < WRITES && OPEN(3) -> pos[3]++; writes++ }
  od
}

/* The operator: one request at a time, the one the phase allows. */
proctype Operator()
{
end_operator:
  do
  :: atomic { nreq < NREQ && req == 0 -> nreq++; reqid = nreq; req = (serving == S -> SWITCH : REVERSE) }
  od
}

/* ZOMBIE: the leader's lease lost at any moment (pause, partition) while
 * its process runs on. */
proctype Faults()
{
end_faults:
  do
  :: atomic { crashes < CRASHES && leader != 0 -> leader = 0; crashes++ }
  od
}

/* Safety, in every reachable state. */
proctype Safety()
{
end_safety:
  do
  :: (WRITABLE(S) && WRITABLE(T)) -> assert(!(WRITABLE(S) && WRITABLE(T)))  /* never both sides writable */
  :: WRITABLE(1 - serving) -> assert(!WRITABLE(1 - serving))                /* only the routed side writable */
  :: lost -> assert(!lost)                                                  /* no acknowledged write skipped */
  od
}

/* When nothing can move any more (every request handled, streams drained,
 * the bounds used up): nothing half-switched, nothing lost. */
proctype Final()
{
  byte i;
  timeout ->
  assert(nreq == NREQ && req == 0);
  i = 1;
  do
  :: i <= NREQ ->
     assert(jout[i] != RUN);
     assert(jout[i] != NONE);   /* no request dropped unrun (README: finding 2) */
     i++
  :: else -> break
  od;
  assert(serving == SERVES(phase));
  assert(OPEN(SH(serving, 0)) && OPEN(SH(serving, 1)));
  assert(!OPEN(SH(1 - serving, 0)) && !OPEN(SH(1 - serving, 1)));
  assert(rep[0] == pos[0] && rep[1] == pos[1] && rep[2] == pos[2] && rep[3] == pos[3])
}

init
{
  atomic {
    fenced[SH(T, 0)] = 1;   /* the target is fenced from workflow create on */
    fenced[SH(T, 1)] = 1;
    run Safety();
#ifndef NO_FINAL
    run Final();
#endif
    run Streams();
    run Apps();
    run Operator();
#ifdef ZOMBIE
    run Faults();
#endif
    run Coord(1);
    run Coord(2)
  }
}
