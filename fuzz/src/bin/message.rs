//! Fuzz target `message`: see `leadboard_fuzz::message`.

fn main() {
    afl::fuzz!(|data: &[u8]| leadboard_fuzz::message(data));
}
