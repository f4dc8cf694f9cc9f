#![no_std]
#![no_main]
use unikernel::prelude::*;

#[unikernel(console)]
struct App;
