#[weir_sdk::filter]
fn keep_all() -> bool {
    true
}

fn main() {}
