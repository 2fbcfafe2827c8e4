//! The `ablate` command line: parses arguments and maps the outcome to an exit code.

fn main() {
    std::process::exit(ablate::cli::main());
}
