//! `slotsmith lab`: throwaway clusters, and the faults to practise on.

use crate::cli::{Fault, Global, LabAction};
use crate::connect::script_path;
use crate::lab;

use super::output::{print_doc, say};
use super::{run_options, AppError};

pub(super) fn run_lab(
    g: &Global,
    rt: &tokio::runtime::Handle,
    action: &LabAction,
) -> Result<i32, AppError> {
    // A layout or server that cannot be is bad input (exit 2); the rest failed (exit 1).
    let lab_err = |e: lab::LabError| match e {
        lab::LabError::Spec(_) => AppError::Usage(e.to_string()),
        e => AppError::Failed(e.to_string()),
    };
    let password = g.password.clone().filter(|p| !p.is_empty());
    // Which lab: --port, else the port of -c / SLOTSMITH_CLUSTER (an empty one names
    // nothing), else 7001.
    let named = g.cluster.as_deref().filter(|a| !a.is_empty());
    let named = named.map(lab::Named::as_given);
    let base = |port: &crate::cli::LabPort| lab::base_port(port.port, named).map_err(lab_err);
    let open = |port: &crate::cli::LabPort| -> Result<lab::Lab, AppError> {
        Ok(lab::Lab::open(base(port)?)
            .map_err(lab_err)?
            .with_password(password.clone()))
    };
    match action {
        LabAction::Up {
            port,
            masters,
            replicas,
            empty,
            keys,
            server,
        } => {
            let mut spec = lab::LabSpec::new(base(port)?);
            spec.server = server.clone();
            spec.masters = *masters as usize;
            spec.replicas = *replicas as usize;
            spec.empty = *empty as usize;
            spec.keys = *keys;
            spec.password = password.clone();
            spec.user = g.user.clone();
            if g.tls || g.cacert.is_some() {
                // The nodes serve TLS with the same files the clients use.
                match (&g.cacert, &g.cert, &g.key) {
                    (Some(ca), Some(cert), Some(key)) => {
                        spec.tls = Some(lab::LabTls {
                            ca: ca.clone(),
                            cert: cert.clone(),
                            key: key.clone(),
                            auth_clients: true,
                        })
                    }
                    _ => {
                        return Err(AppError::Usage(
                            "a TLS lab needs --cacert, --cert and --key (the nodes use the same certificate)".into(),
                        ))
                    }
                }
            }
            let lab = lab::up(&spec, rt).map_err(lab_err)?;
            say(g, "lab", lab.next_steps());
            Ok(0)
        }
        LabAction::Status { port } => {
            let status = open(port)?.status(rt).map_err(lab_err)?;
            if g.json {
                print_doc("lab", &status);
            } else {
                println!("{status}");
            }
            Ok(0)
        }
        LabAction::Down { port } => {
            say(
                g,
                "lab",
                lab::down(base(port)?).map_err(lab_err)?.to_string(),
            );
            Ok(0)
        }
        LabAction::Break { fault } => match fault {
            Fault::StuckSlot { port, slot } => {
                let fault = lab::Fault::StuckSlot { slot: *slot };
                let text = open(port)?
                    .break_with(fault, rt, script_path(g), run_options(g))
                    .map_err(lab_err)?;
                say(g, "lab", text);
                Ok(0)
            }
        },
    }
}
