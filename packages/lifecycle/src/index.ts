export * from './gc/collector';
export * from './gc/mark';
export * from './gc/metrics';
export * from './gc/schedule';
export * from './gc/service';
export * from './gc/candidates';
