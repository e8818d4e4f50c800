fn main() -> std::process::ExitCode {
    match kaibiao::cli::main() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kaibiao: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
