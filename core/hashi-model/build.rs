//! With the `openblas` feature, links the system's OpenBLAS (`libopenblas.so`, e.g. Debian's libopenblas-dev).

fn main() {
    if std::env::var_os("CARGO_FEATURE_OPENBLAS").is_some() {
        println!("cargo:rustc-link-lib=dylib=openblas");
    }
}
