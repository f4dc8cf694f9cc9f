pub struct Model;
pub struct Other;

#[unikernel::init]
fn init() -> Model {
    Model
}

mod more {
    #[unikernel::init]
    fn init_again() -> super::Other {
        super::Other
    }
}

#[unikernel::init]
fn with_parameter(_seed: u32) {}

fn main() {}
