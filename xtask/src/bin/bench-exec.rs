//! `bench-exec --stderr FILE -- PROGRAM ARGS...`: the benchmark's meter (see
//! `xtask::bench::exec`). A program of its own rather than a task of `xtask`: Linux folds the
//! resident peak of the process that starts a child into the child's `ru_maxrss`, so the meter
//! must be smaller than anything it measures. `xtask` itself starts at about 4.5 MiB, more than
//! the hook executable doing nothing; this program starts at about 2.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let (Some(flag), Some(stderr), Some(dashes)) = (args.next(), args.next(), args.next()) else {
        eprintln!("usage: bench-exec --stderr FILE -- PROGRAM ARGS...");
        return ExitCode::from(2);
    };
    let command: Vec<OsString> = args.collect();
    if flag != "--stderr" || dashes != "--" || command.is_empty() {
        eprintln!("usage: bench-exec --stderr FILE -- PROGRAM ARGS...");
        return ExitCode::from(2);
    }
    match xtask::bench::exec::measure_child(&PathBuf::from(stderr), &command[0], &command[1..]) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-exec: {e:#}");
            ExitCode::FAILURE
        }
    }
}
