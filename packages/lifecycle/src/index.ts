export * from './gc/collector';
export * from './gc/mark';
