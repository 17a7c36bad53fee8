//! `ops`: parses the command line, runs the command, and exits with 1 and a message on
//! stderr when it fails. See the library for the commands.

use std::process::ExitCode;

use clap::Parser;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = ops::cli::Cli::parse();
    let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr());
    match ops::run(cli, &mut out, &mut err).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
