mod harness;
mod site;
