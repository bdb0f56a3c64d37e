import{a,b}from"./chunk-UHLKZVWA.js";import"./chunk-PK5D76GT.js";import"./chunk-VC46IEJQ.js";export{a as conf,b as language};
