//! `include_dir!` embeds the runtime definitions, executor shims and samples but does not tell
//! cargo about files added to those folders later; a changed folder rebuilds the crate.

fn main() {
    for dir in ["../runtimes", "../executors", "../samples"] {
        println!("cargo:rerun-if-changed={dir}");
    }
}
