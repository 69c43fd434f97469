//! Inspects a durable scheduler's journal, without changing it.
//!
//! ```sh
//! cargo run --example journal -- DIR              # does it open? a summary
//! cargo run --example journal -- DIR segments     # its segment files
//! cargo run --example journal -- DIR processes    # its processes
//! cargo run --example journal -- DIR pid N        # the records of process N
//! cargo run --example journal -- DIR records      # every record
//! ```
//!
//! A journal that does not open is reported with the reason, as
//! `DurableBuilder::open` would give it (a missing segment, corruption at a file
//! and offset, a record that does not decode, records that lost their process's
//! beginning), and the program exits with status 1. (What needs the program's
//! own types, whether its templates are registered and its types' layouts
//! unchanged, is checked when it opens the journal.) The journal must not be open
//! in a running program.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use chronoflow::Pid;
use chronoflow::durable::inspect::{self, RecordInfo};

fn usage() -> ExitCode {
    eprintln!("usage: journal DIR [segments|processes|records|pid N]");
    ExitCode::from(2)
}

fn print(r: &RecordInfo) {
    // A closed pipe (`| head`) ends the listing quietly.
    if writeln!(std::io::stdout(), "{:>8}  {}  {}", r.lsn, r.at, r.text).is_err() {
        std::process::exit(0);
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(dir) = args.first().map(PathBuf::from) else {
        return usage();
    };
    if !dir.is_dir() {
        eprintln!("{} is not a directory", dir.display());
        return ExitCode::FAILURE;
    }
    let command: Vec<&str> = args[1..].iter().map(String::as_str).collect();
    let result = match command.as_slice() {
        [] => inspect::check(&dir).map(|summary| {
            println!(
                "the journal opens: {} records in {} segments, {} processes, {} undelivered messages",
                summary.records,
                summary.segments.len(),
                summary.processes.len(),
                summary.undelivered
            );
        }),
        ["segments"] => inspect::check(&dir).map(|summary| {
            for segment in &summary.segments {
                let len = std::fs::metadata(segment).map_or(0, |m| m.len());
                println!("{}  {len} bytes", segment.display());
            }
        }),
        ["processes"] => inspect::check(&dir).map(|summary| {
            println!("pid      parent   template             restart   state     replay inbox");
            for p in &summary.processes {
                let state = match (p.started, p.ended) {
                    (_, true) => "ended",
                    (true, false) => "running",
                    (false, false) => "created",
                };
                let parent = p.parent.map_or("-".to_string(), |p| p.to_string());
                println!(
                    "{:<8} {:<8} {:<20} {:>7}   {:<9} {:>6} {:>5}",
                    p.pid.to_string(),
                    parent,
                    p.template,
                    p.restart,
                    state,
                    p.records,
                    p.inbox
                );
            }
        }),
        ["records"] => inspect::records(&dir).and_then(|records| {
            for r in records {
                print(&r?);
            }
            Ok(())
        }),
        ["pid", n] => {
            let Ok(n) = n.parse::<u64>() else {
                return usage();
            };
            inspect::records(&dir).and_then(|records| {
                for r in records {
                    let r = r?;
                    if r.pid == Some(Pid(n)) || r.from == Some(Pid(n)) {
                        print(&r);
                    }
                }
                Ok(())
            })
        }
        _ => return usage(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            println!("the journal does not open: {e}");
            ExitCode::FAILURE
        }
    }
}
