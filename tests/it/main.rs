mod harness;
mod lab;
mod site;
