//! The `slotsmith` binary: parse the command line, run it, map the outcome to an
//! exit code (0 ok, 1 unhealthy or failed, 2 usage or connection error).

use slotsmith::{app, commands};

fn main() {
    // Like every Unix filter: a closed pipe (`slotsmith ... | head`) ends the program quietly.
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let parsed = match commands::parse(std::env::args_os().collect()) {
        Ok(parsed) => parsed,
        Err(e) => {
            // With --json a usage error is one JSON document too (help and --version
            // are not errors).
            let json = std::env::args_os().any(|a| a == "--json");
            if json && e.use_stderr() {
                let _ = e.print();
                let text = e.to_string();
                let first = text.lines().next().unwrap_or_default();
                let sentence = first.strip_prefix("error: ").unwrap_or(first).to_string();
                println!("{}", app::error_doc(&app::AppError::Usage(sentence)));
                std::process::exit(2);
            }
            e.exit()
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("slotsmith: cannot start the async runtime: {e}");
            std::process::exit(2);
        }
    };
    slotsmith::interrupt::install(rt.handle());
    let json = parsed.global().json;
    let code = match app::run(parsed, rt.handle().clone()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("slotsmith: {e}");
            // With --json, every run prints one document, errors included.
            if json {
                println!("{}", app::error_doc(&e));
            }
            e.exit_code()
        }
    };
    let code = slotsmith::interrupt::exit_code().unwrap_or(code);
    rt.shutdown_background();
    std::process::exit(code);
}
