//! The `ablate` command line: parses arguments and maps the outcome to an exit code.

/// Large tensors on transparent huge pages, reused from step to step (see `ablate::alloc`).
#[global_allocator]
static ALLOCATOR: ablate::alloc::HugePageAllocator = ablate::alloc::HugePageAllocator;

fn main() {
    let missing = ablate::host_cpu::missing_features();
    if !missing.is_empty() {
        eprintln!("error: {}", ablate::host_cpu::unsupported_message(&missing));
        std::process::exit(2);
    }
    std::process::exit(ablate::cli::main());
}
