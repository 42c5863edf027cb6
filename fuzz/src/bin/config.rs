//! Fuzz target `config`: see `leadboard_fuzz::config`.

fn main() {
    afl::fuzz!(|data: &[u8]| leadboard_fuzz::config(data));
}
