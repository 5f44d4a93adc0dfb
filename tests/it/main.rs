mod day2;
mod harness;
mod site;
