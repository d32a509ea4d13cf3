fn main() {
    std::process::exit(regaudit::cli::run(std::env::args_os()));
}
