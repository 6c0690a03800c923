//! Writes: MIGRATE, SETSLOT, ADDSLOTS/DELSLOTS and the raw `command` escape hatch.
//! Each goes through the cluster interface, so a dry run or a journal sees it.

use std::rc::Rc;

use rhai::{Array, Dynamic, Engine, Map};

use super::def;
use crate::cluster::mover::{self, MoveOpts};
use crate::cluster::{ClusterError, MigrateOpts, Reply, SetSlot};
use crate::script::host::{keys_arg, runtime_error, slot_arg, Host, RhaiResult};

/// A positive integer option: `what` names it, `unit` follows "an integer".
fn positive(v: &Dynamic, what: &str, unit: &str) -> RhaiResult<u64> {
    let n = v
        .as_int()
        .map_err(|_| runtime_error(format!("{what} must be an integer{unit}")))?;
    if n <= 0 {
        return Err(runtime_error(format!("{what} must be positive, got {n}")));
    }
    Ok(n as u64)
}

/// `#{timeout, replace, copy}` from a script.
fn migrate_opts(opts: &Map) -> RhaiResult<MigrateOpts> {
    let mut out = MigrateOpts::default();
    for (k, v) in opts {
        match k.as_str() {
            "timeout" => {
                out.timeout_ms = positive(v, "migrate: opts.timeout", " (ms)")?;
            }
            "replace" => {
                out.replace = v
                    .as_bool()
                    .map_err(|_| runtime_error("migrate: opts.replace must be true or false"))?
            }
            "copy" => {
                out.copy = v
                    .as_bool()
                    .map_err(|_| runtime_error("migrate: opts.copy must be true or false"))?
            }
            other => {
                return Err(runtime_error(format!(
                    "migrate: unknown option \"{other}\" (known: timeout, replace, copy)"
                )))
            }
        }
    }
    Ok(out)
}

/// `#{pipeline, timeout, timeout_max, max_key_size, replace, parallel, migration}` for
/// moves, with the host's stop check.
fn move_opts(h: &Host, opts: &Map) -> RhaiResult<MoveOpts> {
    let mut out = MoveOpts::new(h.stop.clone());
    let mut rest = Map::new();
    for (k, v) in opts {
        match k.as_str() {
            "pipeline" => {
                out.pipeline = positive(v, "opts.pipeline", "")?;
            }
            "parallel" => {
                out.parallel = positive(v, "opts.parallel", "")? as usize;
            }
            // () when the command line leaves it to the engine.
            "batch" if v.is_unit() => {}
            "batch" => {
                out.batch = Some(positive(v, "opts.batch", " (slots)")? as usize);
            }
            "migration" => {
                let text = v
                    .clone()
                    .into_string()
                    .map_err(|_| runtime_error("opts.migration must be \"auto\", \"atomic\" or \"legacy\""))?;
                out.migration = text.parse().map_err(runtime_error)?;
            }
            "max_key_size" => {
                out.max_key_bytes = positive(v, "opts.max_key_size", " (MB)")?.saturating_mul(1 << 20);
            }
            "timeout_max" => {
                out.timeout_max_ms = positive(v, "opts.timeout_max", " (ms)")?;
            }
            "timeout" | "replace" => {
                rest.insert(k.clone(), v.clone());
            }
            other => {
                return Err(runtime_error(format!(
                    "unknown option \"{other}\" (known: pipeline, timeout, timeout_max, max_key_size, replace, parallel, batch, migration)"
                )))
            }
        }
    }
    out.migrate = migrate_opts(&rest)?;
    Ok(out)
}

/// A serializable report as a script map.
fn to_map<T: serde::Serialize>(v: &T) -> RhaiResult<Map> {
    rhai::serde::to_dynamic(v)?
        .try_cast::<Map>()
        .ok_or_else(|| runtime_error("internal: report is not a map"))
}

/// Slots given as one int, an array of ints, or an array of [start, end] ranges.
fn slots_arg(v: &Dynamic) -> Result<Vec<u16>, ClusterError> {
    let mut out = Vec::new();
    let bad = || {
        ClusterError::State(format!(
            "expected a slot, an array of slots or of [start, end] ranges, got {}",
            v
        ))
    };
    if let Ok(i) = v.as_int() {
        out.push(slot_arg(i)?);
        return Ok(out);
    }
    let arr = v.read_lock::<Array>().ok_or_else(bad)?;
    for item in arr.iter() {
        if let Ok(i) = item.as_int() {
            out.push(slot_arg(i)?);
        } else if let Some(r) = item.read_lock::<Array>() {
            match r.as_slice() {
                [a, b] => {
                    let (a, b) = (
                        a.as_int().map_err(|_| bad())?,
                        b.as_int().map_err(|_| bad())?,
                    );
                    let (a, b) = (slot_arg(a)?, slot_arg(b)?);
                    if a > b {
                        return Err(ClusterError::State(format!(
                            "slot range [{a}, {b}] is reversed"
                        )));
                    }
                    out.extend(a..=b);
                }
                _ => return Err(bad()),
            }
        } else {
            return Err(bad());
        }
    }
    Ok(out)
}

/// Turn a reply into a script value: strings, ints, arrays, maps.
pub fn reply_value(r: Reply) -> Dynamic {
    match r {
        Reply::Nil => Dynamic::UNIT,
        Reply::Int(i) => i.into(),
        Reply::Bulk(b) => crate::script::host::key_value(b),
        Reply::Status(s) => s.into(),
        Reply::Double(d) => d.into(),
        Reply::Array(items) => items.into_iter().map(reply_value).collect::<Array>().into(),
        Reply::Map(pairs) => pairs
            .into_iter()
            .map(|(k, v)| (reply_value(k).to_string().into(), reply_value(v)))
            .collect::<Map>()
            .into(),
    }
}

fn command_words(args: &[Dynamic]) -> RhaiResult<Vec<Vec<u8>>> {
    args.iter()
        .map(|a| {
            if let Some(b) = a.read_lock::<rhai::Blob>() {
                Ok(b.clone())
            } else if a.is_string() || a.is_int() || a.is_float() || a.is_bool() {
                Ok(a.to_string().into_bytes())
            } else {
                Err(runtime_error(format!(
                    "command: arguments must be strings, numbers or blobs, got {}",
                    a.type_name()
                )))
            }
        })
        .collect()
}

/// After a move that an interruption stopped: what it did, which ranges moved and
/// which did not, and how to finish.
fn say_interrupted(h: &Host, r: &mover::SlotMoved, moves: &[mover::SlotMove]) {
    if !r.interrupted {
        return;
    }
    let again = match &h.opts.command {
        Some(c) if c.contains("***") => {
            format!("; to finish, run `{c}` again (your password where *** stands)")
        }
        Some(c) => format!("; to finish, run `{c}` again"),
        None => "; to finish, move the slots not moved yet".into(),
    };
    eprintln!("interrupted: {}{again}", r.progress(moves.len()));
    let nodes = h.topology().unwrap_or_default();
    let addr = |id: &str| {
        nodes
            .iter()
            .find(|n| n.id == id)
            .map_or_else(|| id.to_string(), |n| n.addr())
    };
    for line in r.ranges_report(moves, &addr) {
        eprintln!("    {line}");
    }
}

/// The sentence of a script error, without Rhai's "Runtime error:" before it.
fn message_of(e: &rhai::EvalAltResult) -> String {
    match e {
        rhai::EvalAltResult::ErrorRuntime(d, _) => d.to_string(),
        other => other.to_string(),
    }
}

/// `[[start, end, dst], ...]` of `migrate_slots`, as one move per slot from `src`.
fn ranges_arg(h: &Host, src: &str, ranges: &Array) -> RhaiResult<Vec<mover::SlotMove>> {
    if ranges.is_empty() {
        return Err(runtime_error(
            "migrate_slots: ranges is empty; give [[start, end, dst], ...]",
        ));
    }
    let mut out = Vec::new();
    for (i, r) in ranges.iter().enumerate() {
        let bad = |why: &str| runtime_error(format!("migrate_slots: range {} ({r}): {why}", i + 1));
        let Some(items) = r.read_lock::<Array>() else {
            return Err(bad("expected [start, end, dst]"));
        };
        let [a, b, dst] = items.as_slice() else {
            return Err(bad("expected [start, end, dst]"));
        };
        let (Ok(a), Ok(b)) = (a.as_int(), b.as_int()) else {
            return Err(bad("start and end must be slot numbers"));
        };
        let a = slot_arg(a).map_err(|e| bad(&format!("start: {e}")))?;
        let b = slot_arg(b).map_err(|e| bad(&format!("end: {e}")))?;
        if a > b {
            return Err(bad(&format!("start {a} is after end {b}")));
        }
        let dst = h
            .locate(dst)
            .map_err(|e| bad(&format!("dst: {}", message_of(&e))))?;
        out.extend((a..=b).map(|slot| mover::SlotMove {
            slot,
            src: src.to_string(),
            dst: dst.id.clone(),
        }));
    }
    Ok(out)
}

pub fn register(engine: &mut Engine, host: &Rc<Host>) {
    let h = host.clone();
    let migrate = move |src: Dynamic, dst: Dynamic, keys: Dynamic, opts: Map| -> RhaiResult<()> {
        let opts = migrate_opts(&opts)?;
        let keys = h.cl(keys_arg(&keys))?;
        let s = h.locate(&src)?;
        let d = h.locate(&dst)?;
        h.cl(h.cluster.migrate(&s.addr(), &d.addr(), &keys, opts))
    };
    let m2 = migrate.clone();
    def(
        engine,
        "migrate",
        &["src: Node", "dst: Node", "keys: String|Array", "opts: Map", "()"],
        "Move one key or an array of keys from src to dst with MIGRATE ... KEYS;\nopts = #{timeout (ms), replace, copy}. Credentials are passed on to dst.",
        migrate,
    );
    def(
        engine,
        "migrate",
        &["src: Node", "dst: Node", "keys: String|Array", "()"],
        "Move one key or an array of keys from src to dst, with default options.",
        move |src: Dynamic, dst: Dynamic, keys: Dynamic| m2(src, dst, keys, Map::new()),
    );

    let h = host.clone();
    def(
        engine,
        "setslot",
        &["node: Node", "slot: int", "action: String", "other: Node", "()"],
        "CLUSTER SETSLOT on one node: action \"importing\" (other = source), \"migrating\"\n(other = target) or \"node\" (other = new owner).",
        move |node: Dynamic, slot: i64, action: &str, other: Dynamic| -> RhaiResult<()> {
            let slot = h.cl(slot_arg(slot))?;
            let n = h.locate(&node)?;
            let o = h.locate(&other)?;
            let act = match action.to_ascii_lowercase().as_str() {
                "importing" => SetSlot::Importing(o.id),
                "migrating" => SetSlot::Migrating(o.id),
                "node" => SetSlot::Node(o.id),
                "stable" => return Err(runtime_error("setslot: \"stable\" takes no other node: setslot(node, slot, \"stable\")")),
                other => return Err(runtime_error(format!("setslot: unknown action \"{other}\" (importing, migrating, node, stable)"))),
            };
            h.cl(h.cluster.setslot(&n.addr(), slot, &act))
        },
    );
    let h = host.clone();
    def(
        engine,
        "setslot",
        &["node: Node", "slot: int", "action: String", "()"],
        "CLUSTER SETSLOT slot STABLE on one node: clear its migrating/importing marker.",
        move |node: Dynamic, slot: i64, action: &str| -> RhaiResult<()> {
            let slot = h.cl(slot_arg(slot))?;
            if !action.eq_ignore_ascii_case("stable") {
                return Err(runtime_error(format!(
                    "setslot: action \"{action}\" needs the other node: setslot(node, slot, \"{action}\", other)"
                )));
            }
            let n = h.locate(&node)?;
            h.cl(h.cluster.setslot(&n.addr(), slot, &SetSlot::Stable))
        },
    );
    let h = host.clone();
    def(
        engine,
        "setslot_everywhere",
        &["slot: int", "owner: Node", "()"],
        "Tell every master that owner owns slot (SETSLOT NODE): the new owner first, then the\nold owner, then the rest. A node that already turned replica is skipped.",
        move |slot: i64, owner: Dynamic| -> RhaiResult<()> {
            let slot = h.cl(slot_arg(slot))?;
            let nodes = h.topology()?;
            let o = crate::script::host::resolve_in(&nodes, &owner).map_err(|e| h.fail(e))?;
            h.cl(mover::set_owner_everywhere(h.cluster.as_ref(), &nodes, slot, &o))
        },
    );
    let h = host.clone();
    def(
        engine,
        "claim_slot",
        &["node: Node", "slot: int", "()"],
        "Make node the owner of slot atomically and make its claim win (MULTI; DELSLOTS;\nADDSLOTS; CLUSTER BUMPEPOCH; EXEC): for uncovered or multiply-owned slots. Refused while\nanother master serves the slot with keys (it would drop them).",
        move |node: Dynamic, slot: i64| -> RhaiResult<()> {
            let slot = h.cl(slot_arg(slot))?;
            let n = h.locate(&node)?;
            h.cl(mover::claim(h.cluster.as_ref(), &n.addr(), slot))
        },
    );
    let h = host.clone();
    let move_slot = move |slot: i64, src: Dynamic, dst: Dynamic, opts: Map| -> RhaiResult<Map> {
        let slot = h.cl(slot_arg(slot))?;
        let opts = move_opts(&h, &opts)?;
        let s = h.locate(&src)?;
        let d = h.locate(&dst)?;
        let r = h.cl(mover::move_slot(
            h.cluster.as_ref(),
            slot,
            &s.id,
            &d.id,
            &opts,
        ))?;
        to_map(&r)
    };
    let m2 = move_slot.clone();
    def(
        engine,
        "move_slot",
        &["slot: int", "src: Node", "dst: Node", "opts: Map", "Map"],
        "The whole safe migration of one slot (importing, migrating, keys in batches, owner\neverywhere), resuming from any half-done state; opts = #{pipeline, timeout, timeout_max,\nmax_key_size, replace}.\nReturns #{slots, keys, seconds, overwritten, identical}.",
        move_slot,
    );
    def(
        engine,
        "move_slot",
        &["slot: int", "src: Node", "dst: Node", "Map"],
        "move_slot with default options (100 keys per MIGRATE, 5000 ms, no replace).",
        move |slot: i64, src: Dynamic, dst: Dynamic| m2(slot, src, dst, Map::new()),
    );
    let h = host.clone();
    let move_slots = move |moves: Array, opts: Map| -> RhaiResult<Map> {
        let opts = move_opts(&h, &opts)?;
        h.topology()?;
        let mut list = Vec::with_capacity(moves.len());
        // Thousands of moves name a few nodes: each name is looked up once.
        let mut ids: std::collections::HashMap<rhai::ImmutableString, String> =
            std::collections::HashMap::new();
        let mut id_of = |v: &Dynamic| -> RhaiResult<String> {
            let Some(name) = v.read_lock::<rhai::ImmutableString>().map(|s| s.clone()) else {
                return Ok(h.locate(v)?.id);
            };
            if let Some(id) = ids.get(&name) {
                return Ok(id.clone());
            }
            let id = h.locate(v)?.id;
            ids.insert(name, id.clone());
            Ok(id)
        };
        for m in &moves {
            let Some(map) = m.read_lock::<Map>() else {
                return Err(runtime_error(format!(
                    "move_slots: each move is #{{slot, src, dst}}, got {m}"
                )));
            };
            let field = |name: &str| {
                map.get(name).cloned().ok_or_else(|| {
                    runtime_error(format!("move_slots: a move has no \"{name}\": {m}"))
                })
            };
            let slot = field("slot")?
                .as_int()
                .map_err(|_| runtime_error(format!("move_slots: slot must be an integer: {m}")))?;
            let slot = h.cl(slot_arg(slot))?;
            let src = id_of(&field("src")?)?;
            let dst = id_of(&field("dst")?)?;
            list.push(mover::SlotMove { slot, src, dst });
        }
        let r = h.cl(h.cluster.move_slots(&list, &opts))?;
        say_interrupted(&h, &r, &list);
        to_map(&r)
    };
    let ms = move_slots.clone();
    def(
        engine,
        "move_slots",
        &["moves: Array", "opts: Map", "Map"],
        "Move many slots (an array of #{slot, src, dst}) with the safe protocol, batched and\npipelined, several source/target pairs at once; opts = #{pipeline, timeout, timeout_max,\nmax_key_size, replace, parallel, batch (slots per batch)}. Ctrl+C finishes the slots in flight. Returns #{slots, keys,\nseconds, interrupted, open (slots left open), left_alone (#{slot, why, big_key}: changed\nsince planned, or a key over max_key_size), ...}.",
        move_slots,
    );
    def(
        engine,
        "move_slots",
        &["moves: Array", "Map"],
        "move_slots with default options.",
        move |moves: Array| ms(moves, Map::new()),
    );
    let h = host.clone();
    def(
        engine,
        "migrate_slots",
        &["src: Node", "ranges: Array", "Map"],
        "Move slot ranges from src with the server's own atomic slot migration: one CLUSTER\nMIGRATESLOTS for all of them (ranges = [[start, end, dst], ...]; Valkey 9 or later on src\nand every dst). Waits until every job has ended; Ctrl+C cancels them. A failed job is an\nerror naming its slots. Returns #{slots, keys, seconds, interrupted, slot_keys, ...} as\nmove_slots.",
        move |src: Dynamic, ranges: Array| -> RhaiResult<Map> {
            h.topology()?;
            let s = h
                .locate(&src)
                .map_err(|e| runtime_error(format!("migrate_slots: src: {}", message_of(&e))))?;
            let list = ranges_arg(&h, &s.id, &ranges)?;
            // Said for this primitive, which has no --migration: what lacks atomic
            // slot migration, and what moves slots there.
            let mut lacking: Vec<String> = Vec::new();
            let mut ends: Vec<&str> = vec![s.id.as_str()];
            for m in &list {
                if !ends.contains(&m.dst.as_str()) {
                    ends.push(m.dst.as_str());
                }
            }
            let nodes = h.topology()?;
            for id in ends {
                if let Some(n) = nodes.iter().find(|n| n.id == id) {
                    if !h.cl(h.cluster.moves_atomically(&n.addr()))? {
                        lacking.push(n.addr());
                    }
                }
            }
            if !lacking.is_empty() {
                return Err(runtime_error(format!(
                    "migrate_slots: {} cannot move slots atomically (no CLUSTER MIGRATESLOTS: atomic slot migration needs Valkey 9 or later); move them with move_slots, which uses the legacy protocol there",
                    lacking.join(", ")
                )));
            }
            let opts = MoveOpts {
                migration: mover::Migration::Atomic,
                ..MoveOpts::new(h.stop.clone())
            };
            let r = h.cl(h.cluster.move_slots(&list, &opts))?;
            say_interrupted(&h, &r, &list);
            to_map(&r)
        },
    );
    let h = host.clone();
    def(
        engine,
        "cancel_slot_migrations",
        &["node: Node", "bool"],
        "CLUSTER CANCELSLOTMIGRATIONS on one node: cancel every atomic slot migration it is\nsending (its slots stay with it). False when it had none in flight.",
        move |node: Dynamic| -> RhaiResult<bool> {
            let n = h.locate(&node)?;
            h.cl(h.cluster.cancel_slot_migrations(&n.addr()))
        },
    );
    let h = host.clone();
    let move_keys = move |slot: i64, src: Dynamic, dst: Dynamic, opts: Map| -> RhaiResult<Map> {
        let slot = h.cl(slot_arg(slot))?;
        // A repair's key step (cancel's keys back, fix gathering keys) must not stop
        // half-way: the limit is for whole-slot moves, decided before any key moves.
        let opts = MoveOpts {
            max_key_bytes: u64::MAX,
            ..move_opts(&h, &opts)?
        };
        let s = h.locate(&src)?;
        let d = h.locate(&dst)?;
        let r = h.cl(mover::move_keys(
            h.cluster.as_ref(),
            slot,
            &s.addr(),
            &d.addr(),
            &opts,
        ))?;
        to_map(&r)
    };
    let k2 = move_keys.clone();
    def(
        engine,
        "move_keys",
        &["slot: int", "src: Node", "dst: Node", "opts: Map", "Map"],
        "Move every key of slot held by src to dst (MIGRATE in batches, sized for big keys,\nwhatever their size: opts.max_key_size does not apply) without touching slot state; equal\nvalues on both sides are settled, different ones fail unless opts.replace.\nReturns #{keys, overwritten, identical}.",
        move_keys,
    );
    def(
        engine,
        "move_keys",
        &["slot: int", "src: Node", "dst: Node", "Map"],
        "move_keys with default options.",
        move |slot: i64, src: Dynamic, dst: Dynamic| k2(slot, src, dst, Map::new()),
    );
    let h = host.clone();
    def(
        engine,
        "addslots",
        &["node: Node", "slots: int|Array", "()"],
        "CLUSTER ADDSLOTS on one node: a slot, an array of slots, or of [start, end] ranges.",
        move |node: Dynamic, slots: Dynamic| -> RhaiResult<()> {
            let slots = h.cl(slots_arg(&slots))?;
            let n = h.locate(&node)?;
            h.cl(h.cluster.addslots(&n.addr(), &slots))
        },
    );
    let h = host.clone();
    def(
        engine,
        "delslots",
        &["node: Node", "slots: int|Array", "()"],
        "CLUSTER DELSLOTS on one node: a slot, an array of slots, or of [start, end] ranges.",
        move |node: Dynamic, slots: Dynamic| -> RhaiResult<()> {
            let slots = h.cl(slots_arg(&slots))?;
            let n = h.locate(&node)?;
            h.cl(h.cluster.delslots(&n.addr(), &slots))
        },
    );

    let h = host.clone();
    let command = move |node: Dynamic, words: Array| -> RhaiResult<Dynamic> {
        if words.is_empty() {
            return Err(runtime_error("command: no command given"));
        }
        let words = command_words(&words)?;
        // Any host:port is accepted, even one that is not (yet) part of the cluster.
        let addr = match node.read_lock::<rhai::ImmutableString>() {
            Some(s) if s.contains(':') => s.to_string(),
            _ => h.locate(&node)?.addr(),
        };
        Ok(reply_value(h.cl(h.cluster.call(&addr, &words))?))
    };
    let c = command.clone();
    def(
        engine,
        "command",
        &["node: Node", "args: Array", "Dynamic"],
        "Send any command to one node, e.g. command(n, [\"CLUSTER\", \"INFO\"]); the escape hatch.",
        move |node: Dynamic, words: Array| c(node, words),
    );
    let h = host.clone();
    def(
        engine,
        "command_all",
        &["nodes: Array", "args: Array", "Array"],
        "Send one command to each of nodes (node maps, ids or \"host:port\") at once, in\nparallel: [#{addr, reply} or #{addr, error}] in the order of nodes. A node that answers\nwith an error or not at all gives #{addr, error} (the error in words, without the\naddress); the others are not held up by it.",
        move |nodes: Array, words: Array| -> RhaiResult<Array> {
            if words.is_empty() {
                return Err(runtime_error("command_all: no command given"));
            }
            let words = command_words(&words)?;
            let mut addrs = Vec::with_capacity(nodes.len());
            for n in &nodes {
                addrs.push(match n.read_lock::<rhai::ImmutableString>() {
                    Some(s) if s.contains(':') => s.to_string(),
                    _ => h.locate(n)?.addr(),
                });
            }
            let replies = h.cluster.call_each(&addrs, &words);
            Ok(addrs
                .into_iter()
                .zip(replies)
                .map(|(addr, r)| {
                    let mut m = Map::new();
                    match r {
                        Ok(reply) => {
                            m.insert("reply".into(), reply_value(reply));
                        }
                        Err(e) => {
                            let text = e.to_string();
                            let at = format!(" on {addr}: ");
                            let text = match text.find(&at) {
                                Some(i) => text[i + at.len()..].to_string(),
                                None => text,
                            };
                            m.insert("error".into(), text.trim().to_string().into());
                        }
                    }
                    m.insert("addr".into(), addr.into());
                    Dynamic::from(m)
                })
                .collect())
        },
    );
    macro_rules! command_n {
        ($($a:ident),*) => {{
            let c = command.clone();
            def(
                engine,
                "command",
                &["node: Node", "cmd: String", $(stringify!($a),)* "Dynamic"],
                "Send any command to one node, e.g. command(n, \"CLUSTER\", \"COUNTKEYSINSLOT\", 5519).",
                move |node: Dynamic, cmd: Dynamic, $($a: Dynamic),*| c(node, vec![cmd, $($a),*]),
            );
        }};
    }
    command_n!();
    command_n!(a1);
    command_n!(a1, a2);
    command_n!(a1, a2, a3);
    command_n!(a1, a2, a3, a4);
    command_n!(a1, a2, a3, a4, a5);
}
