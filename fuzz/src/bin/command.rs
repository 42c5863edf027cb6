//! Fuzz target `command`: see `leadboard_fuzz::command`.

fn main() {
    afl::fuzz!(|data: &[u8]| leadboard_fuzz::command(data));
}
