//! The words of the commands slotsmith sends to change or read slots, built in one
//! place for the live cluster and its bulk mover alike, so both send them the same.

use super::conn::{args, split_addr, ConnOptions};
use super::{Key, MigrateOpts, Result, SetSlot};

/// A slot as a command word.
pub fn slot_word(slot: u16) -> Vec<u8> {
    slot.to_string().into_bytes()
}

/// `CLUSTER COUNTKEYSINSLOT slot`.
pub fn countkeysinslot(slot: u16) -> Vec<Vec<u8>> {
    vec![
        b"CLUSTER".to_vec(),
        b"COUNTKEYSINSLOT".to_vec(),
        slot_word(slot),
    ]
}

/// `CLUSTER GETKEYSINSLOT slot count`.
pub fn getkeysinslot(slot: u16, count: u64) -> Vec<Vec<u8>> {
    vec![
        b"CLUSTER".to_vec(),
        b"GETKEYSINSLOT".to_vec(),
        slot_word(slot),
        count.to_string().into_bytes(),
    ]
}

/// `CLUSTER SETSLOT slot IMPORTING|MIGRATING|STABLE|NODE ...`.
pub fn setslot(slot: u16, action: &SetSlot) -> Vec<Vec<u8>> {
    let mut words = vec![b"CLUSTER".to_vec(), b"SETSLOT".to_vec(), slot_word(slot)];
    words.extend(action.args().into_iter().map(String::into_bytes));
    words
}

/// `CLUSTER ADDSLOTS slot...`.
pub fn addslots(slots: &[u16]) -> Vec<Vec<u8>> {
    let mut words = vec![b"CLUSTER".to_vec(), b"ADDSLOTS".to_vec()];
    words.extend(slots.iter().map(|s| slot_word(*s)));
    words
}

/// `CLUSTER DELSLOTS slot...`.
pub fn delslots(slots: &[u16]) -> Vec<Vec<u8>> {
    let mut words = vec![b"CLUSTER".to_vec(), b"DELSLOTS".to_vec()];
    words.extend(slots.iter().map(|s| slot_word(*s)));
    words
}

/// `MIGRATE host port "" 0 timeout [COPY] [REPLACE] [AUTH pw | AUTH2 user pw] KEYS k...`
/// for moving `keys` from a node to `dst`, with the cluster's credentials.
pub fn migrate(
    dst: &str,
    keys: &[Key],
    opts: MigrateOpts,
    conn: &ConnOptions,
) -> Result<Vec<Vec<u8>>> {
    let (host, port) = split_addr(dst)?;
    let mut a = args([
        "MIGRATE".to_string(),
        host,
        port.to_string(),
        String::new(),
        "0".into(),
        opts.timeout_ms.to_string(),
    ]);
    if opts.copy {
        a.push(b"COPY".to_vec());
    }
    if opts.replace {
        a.push(b"REPLACE".to_vec());
    }
    match (&conn.user, &conn.password) {
        (Some(user), Some(pw)) => a.extend(args(["AUTH2", user.as_str(), pw.as_str()])),
        (None, Some(pw)) => a.extend(args(["AUTH", pw.as_str()])),
        _ => {}
    }
    a.push(b"KEYS".to_vec());
    a.extend(keys.iter().cloned());
    Ok(a)
}

/// The transaction that makes a node the owner of `slot` and its claim win:
/// `MULTI; [CLUSTER DELSLOTS s;] CLUSTER ADDSLOTS s; CLUSTER BUMPEPOCH; EXEC`, the
/// `DELSLOTS` when the node sees the slot assigned; and that transaction as the
/// journal shows it.
pub fn claim(slot: u16, assigned: bool) -> (Vec<Vec<Vec<u8>>>, String) {
    let mut cmds = vec![args(["MULTI"])];
    if assigned {
        cmds.push(delslots(&[slot]));
    }
    cmds.push(addslots(&[slot]));
    cmds.push(args(["CLUSTER", "BUMPEPOCH"]));
    cmds.push(args(["EXEC"]));
    let text = format!(
        "MULTI; {}CLUSTER ADDSLOTS {slot}; CLUSTER BUMPEPOCH; EXEC",
        if assigned {
            format!("CLUSTER DELSLOTS {slot}; ")
        } else {
            String::new()
        }
    );
    (cmds, text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::conn::describe;

    #[test]
    fn migrate_names_the_target_and_passes_the_credentials() {
        let conn = ConnOptions {
            user: Some("ops".into()),
            password: Some("pw".into()),
            tls: None,
            timeout: std::time::Duration::from_secs(1),
        };
        let opts = MigrateOpts {
            timeout_ms: 7000,
            replace: true,
            copy: false,
        };
        let words = migrate(
            "10.0.0.2:7002",
            &[b"a".to_vec(), b"b".to_vec()],
            opts,
            &conn,
        )
        .expect("an address");
        let text: Vec<String> = words
            .iter()
            .map(|w| String::from_utf8_lossy(w).to_string())
            .collect();
        assert_eq!(
            text,
            [
                "MIGRATE", "10.0.0.2", "7002", "", "0", "7000", "REPLACE", "AUTH2", "ops", "pw",
                "KEYS", "a", "b"
            ]
        );
        assert_eq!(
            describe(&setslot(5519, &SetSlot::Node("abc".into()))),
            "CLUSTER SETSLOT 5519 NODE abc"
        );
    }
}
