//! Fuzz target `envelope`: see `leadboard_fuzz::envelope`.

fn main() {
    afl::fuzz!(|data: &[u8]| leadboard_fuzz::envelope(data));
}
