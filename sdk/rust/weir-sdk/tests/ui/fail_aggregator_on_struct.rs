#[weir_sdk::aggregator]
struct Count;

fn main() {}
