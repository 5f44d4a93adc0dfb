mod fetch;
mod harness;
mod site;
