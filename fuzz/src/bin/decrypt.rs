//! Fuzz target `decrypt`: see `leadboard_fuzz::decrypt`.

fn main() {
    afl::fuzz!(|data: &[u8]| leadboard_fuzz::decrypt(data));
}
